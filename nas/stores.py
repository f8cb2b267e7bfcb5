"""The stores behind the trial log (Optuna) and the run history (MLflow): SQLite set-up, credentials kept out of
messages, the database driver a URL needs, and first-time creation that several processes may race on."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from filelock import FileLock
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from nas.errors import UserError, first_line

SQLITE_PREFIX = "sqlite:///"
# The pip package that provides a DB-API module SQLAlchemy may ask for, where its name differs from the module's.
DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "pymysql": "PyMySQL",
                   "MySQLdb": "mysqlclient", "cx_Oracle": "cx-Oracle", "pyodbc": "pyodbc"}
T = TypeVar("T")


def sqlite_path(url: str) -> str | None:
    """The file of a ``sqlite:///`` URL, else None."""
    return url.removeprefix(SQLITE_PREFIX) if url.startswith(SQLITE_PREFIX) else None


def is_sqlite_file(path: str | Path) -> bool:
    """Whether ``path`` is a file SQLite can open as a database (its header, or empty: an empty database)."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as file:
        return file.read(16) in (b"", b"SQLite format 3\x00")


def sqlite_tables(path: str | Path) -> set[str] | None:
    """The tables of the SQLite database at ``path``, read without changing it; None where it cannot be read."""
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)) as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error:
        return None


MLFLOW_TABLES = {"experiments", "runs", "registered_models"}  # in every MLflow store with a model registry
OPTUNA_TABLES = {"studies", "trials", "version_info"}  # in every Optuna RDB storage


def check_store(uri: str, shown: str, hint: str) -> None:
    """Refuse a local MLflow store that does not exist, or a SQLite file that is not one: MLflow would create an
    empty store (``mlflow.db``, ``mlruns/``) only to report that the model is not in it, add its tables to another
    database, or fail on that database's migration history (an Optuna study's). ``shown`` names the store in the
    message; ``hint`` says what to do. A server is left to MLflow, whose own error names it."""
    scheme, path = urlparse(uri).scheme, sqlite_path(uri)
    if path is not None:  # an empty file is an empty database: MLflow would build its tables in it
        there = Path(path).is_file() and Path(path).stat().st_size > 0
        if there and not is_sqlite_file(path):
            raise UserError(f"{shown}: {path} is not a SQLite database; {hint}")
        tables = sqlite_tables(path) if there else None
        if tables is not None and not MLFLOW_TABLES <= tables:
            raise UserError(f"{shown}: {path} is a SQLite database but not an MLflow store; {hint}")
    elif scheme in ("", "file"):  # a file store
        there = bool(uri) and Path(urlparse(uri).path if scheme else uri).is_dir()
    else:
        return
    if not there:
        raise UserError(f"{shown}: no MLflow store there; {hint}")


def sqlite_wal(path: str) -> None:
    """Switch a SQLite database to write-ahead logging (stored in the file, so once is enough): a commit syncs once
    instead of several times, and readers (optuna-dashboard, mlflow ui, a second worker) do not block writers."""
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA journal_mode=WAL")


_CREDENTIALS = re.compile(r"(://[^/:@\s]*:)[^/@\s]*@")  # the password in scheme://user:password@host


def redact(url: str) -> str:
    """``url`` with its password shown as ``***`` (SQLAlchemy's own rendering), for anything printed or logged."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return _CREDENTIALS.sub(r"\1***@", url)


def redact_text(text: str, *urls: str) -> str:
    """``text`` (an error message, say) with the password of each URL in ``urls``, and of any URL written in it
    with one, replaced by ``***``."""
    for url in urls:
        try:
            password = make_url(url).password
        except (ArgumentError, ValueError):
            password = None
        text = text.replace(url, redact(url))
        if password:
            text = text.replace(str(password), "***")
    return _CREDENTIALS.sub(r"\1***@", text)


def require_driver(url: str, key: str) -> None:
    """UserError naming the pip package to install when the database driver (DB-API module) that the SQLAlchemy URL
    given as ``key`` needs is missing; nothing for a URL that is not SQLAlchemy's (the caller's own error says more)."""
    try:
        make_url(url).get_dialect().import_dbapi()
    except ImportError as exc:
        module = (exc.name or "").split(".")[0]
        package = DRIVER_PACKAGES.get(module, module or "the database driver")
        raise UserError(f"{key}: {redact(url)} needs the database driver {package}: pip install {package}") from None
    except Exception:
        return


def reason(exc: BaseException, *urls: str) -> str:
    """The first line of an error from a store, for a one-line message, with the URLs' passwords hidden."""
    return redact_text(first_line(exc), *urls)


@contextlib.contextmanager
def first_use(url: str) -> Iterator[None]:
    """Hold a lock next to a SQLite store while it is created or migrated, so processes started at once do not race
    on the schema (MLflow and Optuna both create tables on first use). Server databases are not locked here:
    ``retry_race`` covers them."""
    path = sqlite_path(url)
    if path is None or path == ":memory:":
        yield
        return
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with FileLock(path + ".lock", timeout=300):
        yield


def retry_race(create: Callable[[], T], retryable: tuple[type[BaseException], ...], attempts: int = 5) -> T:
    """Call ``create``; when it fails with one of ``retryable`` (another process creating the same schema at the
    same moment), wait a little and try again, up to ``attempts`` times."""
    for attempt in range(attempts):
        try:
            return create()
        except retryable:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
