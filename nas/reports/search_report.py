"""Tables and the progress plot of a search, from its trial log."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from nas.reports.plots import search_progress_plot


def write_search_reports(trials: Sequence[Any], title: str, folder: Path) -> list[Path]:
    """``trials.csv`` (one row per completed trial), ``search_progress.csv`` (best so far) and its plot.

    Args:
        trials: completed trials in order, each with ``number``, ``arch``, ``val_accuracy`` and ``seconds``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(
        {
            "number": [t.number for t in trials],
            "arch": [t.arch for t in trials],
            "val_accuracy": [t.val_accuracy for t in trials],
            "seconds": [round(t.seconds, 3) for t in trials],
        }
    )
    table.to_csv(folder / "trials.csv", index=False)
    progress = pd.DataFrame({"trial": table["number"], "best_val_accuracy": table["val_accuracy"].cummax()})
    progress.to_csv(folder / "search_progress.csv", index=False)
    png = search_progress_plot(table["number"].tolist(), table["val_accuracy"].tolist(), folder / "search_progress.png", title)
    return [folder / "trials.csv", folder / "search_progress.csv", png]
