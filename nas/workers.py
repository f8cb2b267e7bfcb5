"""Which process runs a search or an MLflow run, recorded where a later process can read it. MLflow has no heartbeat,
so an MLflow run left RUNNING by a process of this host that died (kill -9, power cut) is found by its process id and
closed at the next start. Trials are not: their workers may be on other hosts, and Optuna's heartbeat finds them
(``nas.search.runner``)."""

from __future__ import annotations

import os
import socket


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def alive(worker: str | None) -> bool:
    """Whether the process named by ``this_worker()`` in another process still runs. A worker of another host
    cannot be checked from here and counts as alive."""
    host, _, pid = (worker or "").rpartition(":")
    if not host:
        return False  # died before it could record who it was
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
