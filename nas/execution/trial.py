"""One trial, run where the executor put it: train, report the learning curve to the study, tell the study.

The worker writes the trial's outcome to the study itself, so a result is kept even when the process that handed the
trial out dies meanwhile. While it runs, the worker records Optuna's heartbeat for the trial; a trial whose heartbeat
stops (its worker or host died) is found stale by ``optuna.storages.fail_stale_trials`` from any host.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy import event

from nas.estimation import Result
from nas.stores import first_use, retry_race, sqlite_path, sqlite_wal
from nas.strategies.optuna_sampler import FAIL_REASON_ATTR
from nas.training.loop import Diverged, EpochCallback

# Heartbeat of a running trial, and how long without one before it counts as lost (Optuna wants whole seconds).
HEARTBEAT_S = 2
GRACE_S = 10

Objective = Callable[[int, Hashable, EpochCallback], Result]


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on ``url``, with heartbeats; SQLite in WAL mode. Several processes may open a new store at
    once: the first creates its tables, the others wait for it."""
    path = sqlite_path(url)
    if path is not None:
        sqlite_wal(path)  # also creates the folder
    with first_use(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: "experimental" since 2.9
        storage = retry_race(lambda: optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S,
                                                                grace_period=GRACE_S),
                             (sqlalchemy.exc.IntegrityError,))
    if path is not None:
        # In WAL mode, synchronous=NORMAL is still safe from corruption; a power cut may lose the last commits
        # (at worst the trial in flight, which a restart runs again). It halves the cost of each trial's writes.
        event.listen(storage.engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=NORMAL"))
        storage.engine.dispose()
    return storage


def rdb(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDB storage behind ``storage`` (a study wraps it in a cache), or None for another kind."""
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


@functools.lru_cache(maxsize=8)
def _worker_storage(url: str) -> optuna.storages.RDBStorage:
    return open_storage(url)  # one engine per worker process and store


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every ``HEARTBEAT_S`` seconds while the block runs."""
    storage = rdb(storage)
    if storage is None:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    storage.record_heartbeat(trial_id)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs to run trial ``number``: ``storage`` is the study's URL (a worker process opens its own
    connection) or, for threads of the process that owns it, the storage itself."""

    storage: str | optuna.storages.BaseStorage
    trial_id: int
    number: int
    arch: Hashable
    objective: Objective


@dataclass(frozen=True)
class Outcome:
    number: int
    val_accuracy: float | None  # None: the training diverged (``fail_reason`` says how)
    seconds: float = 0.0
    n_params: int = 0
    fail_reason: str = ""


def run_trial(task: TrialTask) -> Outcome:
    """Train ``task.arch`` with ``task.objective`` and write the outcome to the study.

    The validation accuracy after each epoch becomes an intermediate value, written while the next epoch trains. A
    diverged training (``Diverged``) fails the trial with its reason (it used up its proposal); any other exception
    fails it without one (its slot is proposed again) and is raised.
    """
    storage = _worker_storage(task.storage) if isinstance(task.storage, str) else task.storage
    trial_id = task.trial_id
    with heartbeat(storage, trial_id), ThreadPoolExecutor(1, thread_name_prefix="optuna-writer") as writer:
        writes: list[Any] = []

        def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
            writes.append(writer.submit(storage.set_trial_intermediate_value, trial_id, epoch,
                                        metrics["val_accuracy"]))

        try:
            result = task.objective(task.number, task.arch, on_epoch_end)
            for write in writes:
                write.result()
        except Diverged as exc:
            wait(writes)
            storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, str(exc))
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            return Outcome(task.number, None, fail_reason=str(exc))
        except BaseException:
            wait(writes)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            raise
        storage.set_trial_user_attr(trial_id, "seconds", result.seconds)
        storage.set_trial_user_attr(trial_id, "n_params", result.n_params)
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [result.val_accuracy])
    return Outcome(task.number, result.val_accuracy, result.seconds, result.n_params)
