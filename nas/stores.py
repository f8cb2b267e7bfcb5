"""The SQLite stores behind the trial log (Optuna) and the run history (MLflow)."""

from __future__ import annotations

import contextlib
import os
import sqlite3

SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL, else None."""
    return url.removeprefix(SQLITE_PREFIX) if url.startswith(SQLITE_PREFIX) else None


def sqlite_wal(path: str) -> None:
    """Switch a SQLite database to write-ahead logging (stored in the file, so once is enough): a commit syncs once
    instead of several times, and readers (optuna-dashboard, mlflow ui, a second worker) do not block writers."""
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")
