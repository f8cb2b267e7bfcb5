"""The temporary Prefect server a stage starts (PREFECT_API_URL unset) dies with the stage, even on ``kill -9``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _poll(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # a child that has just ended
        return []


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # ended; reaping it is up to whoever adopted it
    except psutil.NoSuchProcess:
        return True


@pytest.mark.skipif(sys.platform != "linux", reason="the server is tied to its parent with Linux's prctl")
def test_a_killed_stage_takes_its_temporary_prefect_server_with_it(tmp_path):
    work, home, log = tmp_path / "work", tmp_path / "prefect-home", tmp_path / "stage.log"
    work.mkdir()
    shutil.copy(ROOT / "prefect.toml", work)  # the project's server startup timeout
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["out"] = str(work / "prepared")
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}  # the session harness sets the URL
    env.update(PREFECT_HOME=str(home), PYTHONPATH=str(ROOT))
    with log.open("w") as out:
        stage = subprocess.Popen([sys.executable, "-m", "flows.prepare"], cwd=work, env=env, stdout=out, stderr=out)

    def uvicorn_child() -> psutil.Process | None:
        assert stage.poll() is None, f"the stage ended before it started its server:\n{log.read_text()}"
        return next((p for p in psutil.Process(stage.pid).children() if "uvicorn" in _cmdline(p)), None)

    server = None
    try:
        server = _poll(uvicorn_child, 120, "the stage's uvicorn child")
        # Killed once the server serves, as when a search is killed mid-run.
        health = f"http://127.0.0.1:{server.cmdline()[server.cmdline().index('--port') + 1]}/api/health"
        _poll(lambda: _answers(health), 120, health)
        assert stage.poll() is None, f"the stage ended before it could be killed:\n{log.read_text()}"
        stage.kill()
        stage.wait()
        _poll(lambda: _gone(server), 30, f"the orphaned Prefect server (pid {server.pid}) to exit")
    finally:
        stage.kill()
        stage.wait()
        if server is not None and not _gone(server):
            server.kill()
