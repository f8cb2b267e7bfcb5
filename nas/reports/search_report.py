"""Tables and plots of a search, from its trial log."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from nas.reports.plots import search_progress_plot, trials_plot


def write_search_reports(study: optuna.Study, trials: Sequence[Any], title: str, folder: Path) -> list[Path]:
    """``trials.csv`` (one row per completed trial), ``search_progress.csv`` (best so far) and their plots
    ``trials.png`` and ``search_progress.png``.

    Args:
        study: the search's Optuna study.
        trials: its completed trials in order, each with ``number``, ``arch``, ``val_accuracy`` and ``seconds``.
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
    return [
        folder / "trials.csv",
        folder / "search_progress.csv",
        search_progress_plot(study, folder / "search_progress.png", title),
        trials_plot(table["number"].tolist(), table["val_accuracy"].tolist(), table["seconds"].tolist(),
                    folder / "trials.png", title),
    ]


def top_trials(trials: Sequence[Any], k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` completed trials of highest val accuracy, best first, as table rows."""
    best = sorted(trials, key=lambda t: t.val_accuracy, reverse=True)[:k]
    return [{"trial": t.number, "val_accuracy": round(t.val_accuracy, 4), "seconds": round(t.seconds, 1),
             "arch": t.arch} for t in best]


def search_summary(found: dict[str, Any]) -> str:
    """One markdown line on a search, from what ``models/search.json`` records."""
    best = found["best"]
    return (f"Study `{found['study_name']}`: `{found['strategy']}` on `{found['space']}`, {found['n_trials']} "
            f"completed trials; best trial #{best['number']}, val accuracy {best['val_accuracy']:.4f}: "
            f"`{best['arch']}`")
