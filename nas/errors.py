"""The one exception type that user mistakes become (the CLI prints its message on one line and exits 2), and the
checks that raise it for what many commands share."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


class UserError(Exception):
    """Bad input from the user (params, arguments, data files): message names what is wrong and what is allowed."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message for a one-line error; its type's name where it has none (an empty file's
    error may say nothing)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check_writable(option: str, folder: Path, files: Iterable[Path] = ()) -> None:
    """UserError unless ``folder`` is, or can be made as, a folder this process may write in, and each of ``files``
    that exists may be overwritten: checked before a command writes anything."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # what the missing folders will be made under
    if not existing.is_dir():
        raise UserError(f"{option}: {existing} is a file, not a folder")
    for path in (existing, *(f for f in files if f.exists())):
        if not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            raise UserError(f"{option}: {path} is not writable" + ("" if path.is_dir() else
                                                                    "; make it writable or remove it"))
