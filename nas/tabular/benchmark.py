"""Tabular benchmarks: a table that answers "how good is this architecture" with zero training.

The format is that of the NAS-Bench-201 table shipped in ``data/nb201_cifar10.csv`` (Dong & Yang, ICLR 2020; columns
and provenance in ``data/README.md``): one row for every architecture of the NB201 cell space, none left out. A table
in the same format for another dataset works unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nas.errors import UserError, first_line
from nas.spaces.nb201 import NB201Arch, NB201Space, decode

NB201_CIFAR10 = Path(__file__).parent / "data" / "nb201_cifar10.csv"
COLUMNS = ("arch", "val_acc_12", "val_acc_200", "test_acc_200", "train_time_12_s", "params_m")


@dataclass(frozen=True)
class Entry:
    val_acc_12: float
    val_acc_200: float
    test_acc_200: float
    train_time_12_s: float
    params_m: float


def read_csv_table(path: Path, columns: tuple[str, ...], what: str = "table", **read_csv: Any) -> pd.DataFrame:
    """The CSV file ``path`` (``pandas.read_csv(**read_csv)``), which must hold ``columns``; UserError naming the
    file when it is absent, not a CSV table, or lacks one of them. ``what`` names such a file in the errors."""
    if not path.is_file():
        raise UserError(f"{path}: no such {what}")
    try:
        table = pd.read_csv(path, **read_csv)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: not a CSV table ({first_line(exc)})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; a table needs {', '.join(columns)}")
    return table


@dataclass(frozen=True)
class TabularBenchmark:
    """Rows by architecture. ``path`` names the table in errors and reports."""

    path: str
    entries: dict[NB201Arch, Entry]

    @classmethod
    def from_csv(cls, path: str | Path = NB201_CIFAR10) -> TabularBenchmark:
        path = Path(path)
        table = read_csv_table(path, COLUMNS, "benchmark table")
        numeric = table[list(COLUMNS[1:])].apply(pd.to_numeric, errors="coerce").astype(float)
        for column in COLUMNS[1:]:
            low, high, allowed = (0, 100, "a percentage 0..100") if "acc" in column else (0, np.inf, "a number >= 0")
            bad = ~numeric[column].between(low, high) | ~np.isfinite(numeric[column])
            if bad.any():
                row = int(bad.idxmax())
                value = table[column][row]
                shown = "missing" if pd.isna(value) else repr(str(value))
                raise UserError(f"{path}: row {row + 2}: {column} is {shown}; it must be {allowed}")
        entries: dict[NB201Arch, Entry] = {}
        for line, (text, values) in enumerate(zip(table["arch"], numeric.itertuples(index=False)), start=2):
            try:
                arch = decode(str(text))
            except ValueError as exc:
                raise UserError(f"{path}: row {line}: {exc}") from None
            if arch in entries:
                raise UserError(f"{path}: row {line}: architecture {text} appears twice")
            entries[arch] = Entry(*map(float, values))
        # A strategy may propose any architecture of the space: a partial table would fail mid-run.
        space = NB201Space().all()
        if len(entries) < len(space):
            absent = next(a for a in space if a not in entries)
            raise UserError(f"{path}: holds {len(entries):,} of the {len(space):,} architectures of the NB201 space "
                            f"(missing, e.g., {absent}); a table needs one row for every architecture")
        return cls(str(path), entries)

    def __getitem__(self, arch: NB201Arch) -> Entry:
        return self.entries[arch]

    def best(self, column: str = "test_acc_200") -> tuple[NB201Arch, float]:
        arch = max(self.entries, key=lambda a: getattr(self.entries[a], column))
        return arch, getattr(self.entries[arch], column)
