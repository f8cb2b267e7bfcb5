"""Which process runs a trial or a run, recorded where a later process can read it, so work left RUNNING by a process
that died (kill -9, power cut) is found and closed at the next start."""

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
