"""What every stage's entry point shares: validate params before Prefect starts, turn user mistakes into one line
and exit code 2 instead of a traceback from the flow engine, and run the flow against a Prefect server that cannot
outlive the stage."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

from nas.config import load_params
from nas.errors import UserError
from nas.stores import redact_text

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# As in nas.cli: torch's "No CUDA runtime is found" (a CUDA toolkit without a GPU driver), logged when a stage imports
# torch.utils.benchmark, is nothing the user did, and would be a second stderr line beside an error's one.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


class _HideUserErrorTracebacks(logging.Filter):
    """The engine logs a failing run's exception with its traceback; for a user mistake the one line is enough (its
    message, which may name a store: the password redacted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UserError):
            record.msg, record.args = redact_text(record.getMessage()), None
            record.exc_info = record.exc_text = None
        return True


def hide_user_error_tracebacks() -> None:
    """Install that filter on the flow and task engines' loggers, once per process. A run a deployment starts (``nas
    schedule``) runs in a process of its own, which never passes through ``run_stage``: the flow calls this itself."""
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.task_engine"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideUserErrorTracebacks) for f in logger.filters):
            logger.addFilter(_HideUserErrorTracebacks())


def is_not_user_error(task, task_run, state) -> bool:
    """Retry condition: retrying cannot fix bad input."""
    try:
        state.result()
    except UserError:
        return False
    except Exception:
        return True
    return True


def _die_with(parent: int, prctl: Callable[..., int]) -> None:
    """Runs in the forked server just before exec: the kernel kills it when ``parent`` dies, however (when the
    thread that started it ends, in fact: the server is started from the main thread). SIGKILL, not SIGTERM: nobody
    is left to serve, uvicorn honours SIGTERM only after its start-up (database migrations, seconds), and the
    SQLite database survives a kill."""
    prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@contextmanager
def api_server() -> Iterator[None]:
    """Without PREFECT_API_URL, Prefect starts a temporary server that it stops only at a normal exit (atexit), so
    a ``kill -9`` of the stage leaves it running. On Linux we start that same server ourselves, tied to this process;
    elsewhere Prefect's own behaviour stays."""
    if PREFECT_API_URL.value() or sys.platform != "linux":
        yield
        return
    # Imported only here: the server package is heavy, and bad params must fail before any of it.
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer

    class ServerDyingWithItsParent(SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen:
            # Prefect's method builds the command and environment and calls Popen: we only add the pre-exec step,
            # so the server runs exactly as Prefect would start it.
            die_with_us = functools.partial(_die_with, os.getpid(), ctypes.CDLL(None).prctl)
            with mock.patch.object(subprocess, "Popen", functools.partial(subprocess.Popen, preexec_fn=die_with_us)):
                return super()._run_uvicorn_command()

    # Registered as Prefect's default server, so any Prefect code that looks for one finds this one.
    server = ServerDyingWithItsParent()
    server.start()  # waits up to [server.ephemeral] startup_timeout_seconds (prefect.toml)
    try:
        # Prefect starts this server without its UI: no "View at" links to pages that do not exist.
        with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_UI_URL: ""}):
            yield
    finally:
        # Logs and events still queued would otherwise be sent at exit, to a server already stopped.
        APILogWorker.drain_all()
        EventsWorker.drain_all()
        server.stop()


def progress_to_stdout() -> None:
    """Prefect's console log (run states, progress) goes to stdout, so that stderr holds what went wrong and only
    that: for a user mistake, its one error line."""
    from prefect.logging.handlers import PrefectConsoleHandler

    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.Logger.manager.loggerDict))]
    for handler in {h for logger in loggers for h in logger.handlers if isinstance(h, PrefectConsoleHandler)}:
        handler.setStream(sys.stdout)
        handler.console.file = sys.stdout  # the handler writes through a rich Console made with the old stream


def run_stage(flow: Callable[[str], Any], argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    params_path = argv[0] if argv else "params.yaml"
    try:
        load_params(params_path)
    except UserError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        sys.exit(2)
    hide_user_error_tracebacks()
    progress_to_stdout()
    with api_server():
        try:
            flow(params_path)
        except UserError as exc:
            print(f"error: {redact_text(str(exc))}", file=sys.stderr)
            sys.exit(2)
