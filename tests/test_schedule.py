"""``nas schedule`` against a real ``prefect server start``: the server creates the runs on the schedule, the served
process runs the pipeline in the project folder, and SIGTERM or Ctrl-C stops it cleanly. Bad input fails before
anything starts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its Prefect and MLflow settings (the session's test harness sets some)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "MLFLOW_TRACKING_URI"}
    return {**env, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false", **extra}


def _poll(condition, timeout: float, what: str, process: subprocess.Popen, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode} while waiting for {what}:\n{log.read_text()}"
        if result := condition():
            return result
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{log.read_text()[-5000:]}")


def _session(leader: subprocess.Popen) -> list[psutil.Process]:
    """Live processes of the session ``leader`` started (flow-run subprocesses of a served process, say)."""
    alive = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getsid(process.pid) == leader.pid and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
    return alive


def _stop(process: subprocess.Popen, sig: int, timeout: float) -> tuple[int | None, list[str]]:
    """Send ``sig``: the exit code (None: it had to be killed) and what else of its session outlived it (killed too)."""
    code = process.poll()
    if code is None:
        process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = process.wait(timeout)
    # Its children get a moment to see it gone (multiprocessing's resource tracker exits when its pipe closes).
    _, left = psutil.wait_procs([p for p in _session(process) if p.pid != process.pid], timeout=10)
    for survivor in left:
        with contextlib.suppress(psutil.Error):
            survivor.kill()
    process.kill()
    process.wait()
    return code, [" ".join((p.info["cmdline"] or [])[:4]) for p in left]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory) -> Iterator[str]:
    """A ``prefect server start`` of its own (its own database), stopped and gone after the module's tests."""
    home, port = tmp_path_factory.mktemp("prefect-server"), _free_port()
    log = home / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                   str(port)], env=_env(home), stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        _poll(lambda: _answers(f"{url}/health"), 120, f"{url}/health", server, log)
        yield url
    finally:
        code, left = _stop(server, signal.SIGTERM, 30)
    assert code is not None and not left, f"the server had to be killed (left: {left}):\n{log.read_text()[-3000:]}"


def _tiny_project(folder: Path, mlflow_db: Path) -> Path:
    folder.mkdir()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["out"] = str(folder / "prepared")
    params["search"].update(n_trials=2, epochs=1, channels=4, strategy="random", strategy_options={},
                            storage=f"sqlite:///{folder / 'optuna.db'}")
    params["retrain"].update(epochs=1, warmup_epochs=0, channels=4, cells_per_stage=1)
    params["tracking"]["uri"] = f"sqlite:///{folder / 'mlflow.db'}"
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(mlflow_db, folder / "mlflow.db")
    return folder


@pytest.mark.timeout(480)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_schedule_runs_the_pipeline_and_a_signal_stops_serving(stop_signal, tmp_path, prefect_server,
                                                                   _migrated_mlflow_db):
    """SIGTERM once a scheduled run has completed; Ctrl-C as soon as the deployment is served (the same shutdown,
    without waiting out a second pipeline run)."""
    wait_for_run = stop_signal == signal.SIGTERM
    project, name = _tiny_project(tmp_path / "project", _migrated_mlflow_db), f"nas-test-{stop_signal.name}"
    log, err = tmp_path / "serve.log", tmp_path / "serve.err"
    # The runner asks for due runs every 2 s instead of 10: a shorter test, the same code path.
    env = _env(tmp_path / "serve-home", PREFECT_API_URL=prefect_server, PREFECT_RUNNER_POLL_FREQUENCY="2")
    # Ctrl-C as in a terminal even where these tests run with SIGINT ignored (as a background job): a child inherits
    # an ignored signal, but not a handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with log.open("w") as out, err.open("w") as errors:
        try:
            serve = subprocess.Popen([sys.executable, "-m", "nas.cli", "schedule", "--interval", "5", "--name", name],
                                     cwd=project, env=env, stdout=out, stderr=errors, start_new_session=True)
        finally:
            signal.signal(signal.SIGINT, previous)
    api = httpx.Client(base_url=prefect_server, timeout=30)

    def deployment() -> dict | None:
        response = api.get(f"/deployments/name/nas-pipeline/{name}")
        return response.json() if response.status_code == 200 else None

    def completed_scheduled_run(deployment_id: str) -> dict | None:
        runs = api.post("/flow_runs/filter", json={"flow_runs": {
            "deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": ["COMPLETED"]}}}}).json()
        return next((r for r in runs if r["auto_scheduled"] and (r["created_by"] or {}).get("type") == "SCHEDULE"), None)

    with api:
        try:
            deployment_id = _poll(deployment, 120, "the deployment", serve, err)["id"]
            if wait_for_run:
                run = _poll(lambda: completed_scheduled_run(deployment_id), 240, "a scheduled run to complete", serve,
                            err)
        finally:
            code, left = _stop(serve, stop_signal, 90)
        paused = deployment()["paused"]
    assert code == 0 and not left, f"exit code {code}, left running: {left}\n{err.read_text()[-5000:]}"
    assert "never awaited" not in err.read_text()
    if wait_for_run:
        assert run["parameters"] == {"params_path": str(project / "params.yaml")}
        # The run worked in the served process's folder, where params.yaml's relative paths point.
        assert (project / "reports" / "metrics.json").is_file() and (project / "models" / "best.pt").is_file()
    # Stopped through Runner's own shutdown, which pauses the schedule: no runs pile up while nobody serves them.
    assert paused
    assert "paused until the next `nas schedule`" in log.read_text()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_runner_starts_stops_it_once_started_and_pauses_the_schedule(stop_signal, prefect_api_url):
    """The window the test above can only hit by chance: the deployment is registered, with its schedule on, and the
    runner has not started yet. The signal is not lost and does not abort; the runner stops once started, which pauses
    the schedule."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.types.entrypoint import EntrypointType

    from flows.pipeline import pipeline
    from flows.schedule import _Runner, make_schedule

    async def paused_before_and_after() -> tuple[bool, bool]:
        runner = _Runner(name=f"starting-{stop_signal.name}", limit=1)
        runner.watch_signals()
        deployment_id = await runner.aadd_flow(pipeline, name=f"starting-{stop_signal.name}",
                                               schedule=make_schedule(None, 3600),
                                               parameters={"params_path": "params.yaml"},
                                               entrypoint_type=EntrypointType.MODULE_PATH)
        async with get_client() as client:
            before = (await client.read_deployment(deployment_id)).paused
            os.kill(os.getpid(), stop_signal)
            await asyncio.sleep(0.5)  # the loop takes the signal before the runner starts
            await asyncio.wait_for(runner.serve(), 120)
            return before, (await client.read_deployment(deployment_id)).paused

    # Ctrl-C is watched only where it is not ignored (these tests may run as a background job).
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert asyncio.run(paused_before_and_after()) == (False, True)
    finally:
        for watched, handler in previous.items():
            signal.signal(watched, handler)


def _snapshot(folder: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


NO_SERVER = "start one with `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api"
CRON_HELP = "not a cron expression; give five fields, minute hour day-of-month month day-of-week, e.g. '0 2 * * *'"


@pytest.mark.parametrize("argv,api_url,message", [
    pytest.param(["--cron", "61 * * * *"], None, f"--cron '61 * * * *': {CRON_HELP}", id="cron-minute-61"),
    pytest.param(["--cron", "0 2 * *"], None, f"--cron '0 2 * *': {CRON_HELP}", id="cron-four-fields"),
    pytest.param(["--cron", "0 2 * * *", "--timezone", "Mars/Olympus"], None,
                 "--timezone 'Mars/Olympus': not an IANA time zone name", id="bad-timezone"),
    pytest.param(["--interval", "60", "--timezone", "Mars/Olympus"], None,
                 "--timezone 'Mars/Olympus': not an IANA time zone name", id="bad-timezone-interval"),
    pytest.param(["--interval", "0"], None, "--interval: must be a number of seconds > 0 and < 1e9, got 0",
                 id="interval-0"),
    pytest.param(["--interval", "-5"], None, "--interval: must be a number of seconds > 0", id="interval-negative"),
    pytest.param(["--cron", "0 2 * * *", "--interval", "60"], None,
                 "argument --interval: not allowed with argument --cron", id="both"),
    pytest.param([], None, "one of the arguments --cron --interval is required", id="neither"),
    pytest.param(["--interval", "60", "--params", "missing.yaml"], None, "missing.yaml: no such params file",
                 id="no-params-file"),
    pytest.param(["--interval", "60"], None, f"PREFECT_API_URL is not set: scheduled runs need a Prefect server; "
                 f"{NO_SERVER}", id="no-api-url"),
    pytest.param(["--interval", "60"], "http://127.0.0.1:{port}/api", "PREFECT_API_URL=http://127.0.0.1:", id="no-server"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, argv, api_url, message):
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "params.yaml", work)
    before = _snapshot(work)
    extra = {"PREFECT_API_URL": api_url.format(port=_free_port())} if api_url else {}
    result = subprocess.run([sys.executable, "-m", "nas.cli", "schedule", *argv], check=False, cwd=work,
                            env=_env(tmp_path / "home", **extra), capture_output=True, text=True, timeout=300)
    err = result.stderr.splitlines()
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert len(err) == 1 and err[0].startswith(f"nas: error: {message}"), result.stderr
    if api_url:
        assert err[0].endswith(NO_SERVER)
    assert _snapshot(work) == before
