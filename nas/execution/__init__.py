"""Who runs a trial: threads of this process (``local``) or the workers of a Dask cluster (``dask``).

Execution is not search: the search loop hands an executor a function and its arguments and gets a future back; it
does not know where the function ran. Trial numbers, slots and seeds are decided by the loop from the study before a
trial is handed over, so no worker ever picks one.

    with executor("dask", workers=4) as pool:         # a LocalCluster of 4 single-threaded worker processes
        future = pool.submit(run_trial, task)
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from nas.errors import UserError

# How long to wait for an existing Dask scheduler to answer before calling its address unreachable.
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Pool:
    """Where trials run: ``submit(fn, *args) -> future`` (a ``concurrent.futures`` or Dask future), and
    ``everywhere(fn)``, which calls ``fn()`` once in every process that runs trials and waits for it."""

    submit: Callable[..., Future]
    everywhere: Callable[[Callable[[], Any]], None]


async def _import(module: str) -> None:
    importlib.import_module(module)  # on the worker's event loop: it blocks the worker, which has nothing to do yet


@contextmanager
def _quiet(logger: logging.Logger, level: int) -> Iterator[None]:
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextmanager
def executor(kind: str, workers: int = 1, address: str = "", warm_up: str = "") -> Iterator[Pool]:
    """A pool running up to ``workers`` calls at once.

    Args:
        kind: ``local`` (threads of this process) or ``dask``.
        address: for ``dask``, the scheduler of an existing cluster (``tcp://host:8786``); empty starts a
            ``LocalCluster`` of ``workers`` processes with one thread each, stopped on exit.
        warm_up: a module every Dask worker imports at once, in the background (torch takes seconds to import).
    """
    if kind == "local":
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trial") as pool:
            yield Pool(pool.submit, lambda fn: fn())
        return
    if kind != "dask":
        raise ValueError(f"unknown executor {kind!r}")
    from distributed import Client, LocalCluster

    with contextlib.ExitStack() as stack:
        if address:
            try:
                client = stack.enter_context(Client(address, timeout=f"{CONNECT_TIMEOUT_S}s", set_as_default=False))
            except (OSError, TimeoutError, ValueError) as exc:
                raise UserError(f"search.dask_address: cannot reach the Dask scheduler at {address!r} "
                                f"({' '.join(str(exc).split()) or type(exc).__name__}); start one with "
                                "`dask scheduler` and `dask worker ADDRESS`, or leave dask_address empty for a local "
                                "cluster") from None
        else:
            # The scheduler and the nannies run in this process, whose "distributed" logger LocalCluster's
            # silence_logs does not quiet: some 40 INFO lines a search would print about the cluster's plumbing.
            stack.enter_context(_quiet(logging.getLogger("distributed"), logging.ERROR))
            # One thread per worker: a trial trains with one intra-op thread wherever it runs (nas.search.stage).
            cluster = stack.enter_context(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                       dashboard_address=None, silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster, set_as_default=False))
        if warm_up:
            client.run(_import, warm_up, wait=False)  # Dask runs without waiting only coroutines
        yield Pool(lambda fn, *args: client.submit(fn, *args, pure=False), lambda fn: client.run(fn) and None)


__all__ = ["CONNECT_TIMEOUT_S", "Pool", "executor"]
