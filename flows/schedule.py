"""Serve the pipeline flow as a Prefect deployment on a cron or interval schedule, until Ctrl-C or SIGTERM.

``nas schedule --cron "0 2 * * *"`` registers the deployment with the server in PREFECT_API_URL (a
``prefect server start``); that server creates the scheduled runs and this process executes them, one at a time, each
in a subprocess that inherits this process's working directory. The params file is read afresh by every run.
"""

from __future__ import annotations

import asyncio
import math
import signal
from pathlib import Path
from typing import Any, Self

from prefect.client.orchestration import get_client
from prefect.client.schemas.schedules import (
    SCHEDULE_TYPES,
    CronSchedule,
    construct_schedule,
)
from prefect.runner import Runner
from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL
from prefect.types.entrypoint import EntrypointType
from pydantic import ValidationError

from nas.config import load_params
from nas.errors import UserError

START_A_SERVER = "start one with `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"


def make_schedule(cron: str | None, interval: float | None, timezone: str = "UTC") -> SCHEDULE_TYPES:
    """Prefect's schedule for exactly one of ``cron`` and ``interval`` (seconds), checked by Prefect's own validators."""
    if (cron is None) == (interval is None):
        raise UserError("give exactly one of --cron and --interval")
    if interval is not None and not (math.isfinite(interval) and 0 < interval < 1e9):
        raise UserError(f"--interval: must be a number of seconds > 0 and < 1e9, got {interval:g}")
    try:
        return construct_schedule(cron=cron, interval=interval, timezone=timezone)
    except ValidationError as exc:
        # an interval schedule's interval is checked above: its only other field is the time zone
        if exc.errors()[0]["loc"] == ("timezone",) or cron is None:
            raise UserError(f"--timezone {timezone!r}: not an IANA time zone name, e.g. UTC or Europe/Berlin") from None
        raise UserError(f"--cron {cron!r}: not a cron expression; give five fields, minute hour day-of-month month "
                        f"day-of-week, e.g. '0 2 * * *'") from None


def check_server() -> None:
    """A Prefect server must answer at PREFECT_API_URL: it is what creates the scheduled runs."""
    url = PREFECT_API_URL.value()
    if not url:
        raise UserError(f"PREFECT_API_URL is not set: scheduled runs need a Prefect server; {START_A_SERVER}")
    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        raise UserError(f"PREFECT_API_URL={url}: no Prefect server answers ({reason}); {START_A_SERVER}")


def _describe(schedule: SCHEDULE_TYPES) -> str:
    if isinstance(schedule, CronSchedule):
        return f"cron '{schedule.cron}' ({schedule.timezone})"
    return f"every {schedule.interval.total_seconds():g} s"


class _Runner(Runner):
    """Stops on SIGTERM and Ctrl-C the way ``Runner.astop`` is meant to: the run in flight is cancelled, the polling
    ends, and on the way out ``Runner`` pauses the schedule, so that no runs pile up while nobody serves them.

    Prefect's own SIGTERM handler calls the sync ``stop()`` from inside the running event loop, where Prefect's async
    dispatch only creates the ``astop`` coroutine ("coroutine 'Runner.astop' was never awaited"), then leaves the event
    loop with ``sys.exit``, which waits for the run in flight to finish instead of cancelling it.

    The signals are watched from before the deployment is registered: a signal while the runner is still starting
    (the deployment, with its schedule on, may already exist) stops it as soon as it has started, which pauses the
    schedule too. A second signal gives up at once.
    """

    def watch_signals(self) -> None:
        """Route SIGINT and SIGTERM to a stop; call from the coroutine that will ``serve``."""
        self._serve_loop = asyncio.get_running_loop()
        self._serving = asyncio.current_task()
        self._stop_requested = False
        self._stopping: asyncio.Task | None = None
        # Python leaves SIGINT ignored when it started so (a background job of a script); so do we.
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            self._serve_loop.add_signal_handler(signal.SIGINT, self._request_stop)
        # What ``start`` installs, from now on. Not the loop's handler as well: with both, one SIGTERM would reach
        # ``_request_stop`` twice and count as a second signal.
        signal.signal(signal.SIGTERM, self.handle_sigterm)

    async def serve(self) -> None:
        await self.start()  # installs handle_sigterm again
        if self._stopping is not None:
            await self._stopping

    async def __aenter__(self) -> Self:
        entered = await super().__aenter__()
        if self._stop_requested:  # signalled while starting: stop now that there is something to stop
            self._stopping = asyncio.ensure_future(self.astop())
        return entered

    def handle_sigterm(self, *args: Any) -> None:
        # A Python signal handler runs between any two bytecodes; the loop runs the stop at a safe point instead.
        self._serve_loop.call_soon_threadsafe(self._request_stop)

    def _request_stop(self) -> None:
        if self._stop_requested:  # a second signal: give up at once
            self._serving.cancel()
            return
        self._stop_requested = True
        if self.started:
            self._stopping = asyncio.ensure_future(self.astop())


async def _serve(name: str, schedule: SCHEDULE_TYPES, params_path: str) -> None:
    # Imports torch and the stages: only once the input is known to be good.
    from flows.pipeline import pipeline

    # One run at a time: runs of one project share its study, checkpoints and outputs.
    runner = _Runner(name=name, limit=1)
    runner.watch_signals()
    deployment_id = await runner.aadd_flow(pipeline, name=name, schedule=schedule,
                                           parameters={"params_path": params_path},
                                           entrypoint_type=EntrypointType.MODULE_PATH)
    where = f"{PREFECT_UI_URL.value()}/deployments/deployment/{deployment_id}" if PREFECT_UI_URL.value() else ""
    print(f"serving deployment '{pipeline.name}/{name}', {_describe(schedule)}, params {params_path}"
          f"{'; runs at ' + where if where else ''}; Ctrl-C to stop", flush=True)
    await runner.serve()
    print(f"stopped; the schedule of '{pipeline.name}/{name}' is paused until the next `nas schedule`", flush=True)


def serve(cron: str | None, interval: float | None, params_path: str = "params.yaml",
          name: str = "nas-pipeline-scheduled", timezone: str = "UTC") -> None:
    """Validate everything, then serve the pipeline on the schedule until SIGINT or SIGTERM.

    Example: ``serve(cron="0 2 * * *", interval=None)`` runs the pipeline every night at 02:00 UTC.
    """
    schedule = make_schedule(cron, interval, timezone)
    load_params(params_path)
    check_server()
    try:
        # Runs start in this process's working directory; an absolute path names the same file wherever they start.
        asyncio.run(_serve(name, schedule, str(Path(params_path).absolute())))
    except asyncio.CancelledError:  # a second signal
        raise KeyboardInterrupt from None
