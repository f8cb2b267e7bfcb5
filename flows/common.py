"""What every stage's entry point shares: validate params before Prefect starts, and turn user mistakes into one
line and exit code 2 instead of a traceback from the flow engine."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

from nas.config import load_params
from nas.errors import UserError


class _HideUserErrorTracebacks(logging.Filter):
    """The engine logs a failing run's exception with its traceback; for a user mistake the one line is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], UserError))


def is_not_user_error(task, task_run, state) -> bool:
    """Retry condition: retrying cannot fix bad input."""
    try:
        state.result()
    except UserError:
        return False
    except Exception:
        return True
    return True


def run_stage(flow: Callable[[str], Any], argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    params_path = argv[0] if argv else "params.yaml"
    try:
        load_params(params_path)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine", "prefect.task_engine"):
        logging.getLogger(name).addFilter(_HideUserErrorTracebacks())
    try:
        flow(params_path)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
