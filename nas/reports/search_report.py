"""Tables and plots of a search, from its trial log."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from nas.reports.plots import (
    alpha_heatmap,
    hypervolume_plot,
    oneshot_epochs_plot,
    pareto_front_plot,
    search_progress_plot,
    trials_plot,
)
from nas.search import pareto

# Written only for the searches they describe (multi-objective; one-shot), so not DVC outputs: `dvc plots show`
# shows them when named (`dvc plots show reports/*.png`).
SEARCH_KIND_PLOTS = frozenset({"pareto_front.png", "hypervolume.png", "alphas.png", "oneshot_epochs.png"})


def write_search_reports(study: optuna.Study, trials: Sequence[Any], title: str, folder: Path,
                         selected: int | None = None, reference: dict[str, float] | None = None) -> list[Path]:
    """``trials.csv`` (one row per completed trial), ``search_progress.csv`` (best so far) and their plots
    ``trials.png`` and ``search_progress.png`` (the trials within ``search.constraints``: the others were not trained); for a multi-objective search also ``pareto_front.png`` (every trial,
    the front, the retrained one starred) and ``hypervolume.png`` (after each trial); for a one-shot search
    ``alphas.png`` and ``oneshot_epochs.png``. Those of ``SEARCH_KIND_PLOTS`` this search does not have are removed.

    Args:
        study: the search's Optuna study.
        trials: its completed trials in order, each with ``number``, ``arch``, ``val_accuracy`` and ``seconds``
            (and ``values`` by objective and ``feasible`` in a multi-objective search).
        selected: number of the trial that was retrained.
        reference: the hypervolume's reference point by objective (``models/search.json``).
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
    objectives = dict(zip(study.metric_names or ["val_accuracy"], (d.name.lower() for d in study.directions)))
    multi = len(objectives) > 1
    if multi:
        for name in objectives:
            if name != "val_accuracy":
                table[name] = [t.values[name] for t in trials]
        table["feasible"] = [t.feasible for t in trials]
    table.to_csv(folder / "trials.csv", index=False)
    # A trial that breaks a constraint before training was never trained: its accuracy of 0 is no result.
    trained = table[[t.feasible for t in trials]]
    progress = pd.DataFrame({"trial": trained["number"], "best_val_accuracy": trained["val_accuracy"].cummax()})
    progress.to_csv(folder / "search_progress.csv", index=False)
    files = [
        folder / "trials.csv",
        folder / "search_progress.csv",
        search_progress_plot(trained["number"].tolist(), trained["val_accuracy"].tolist(),
                             folder / "search_progress.png", title),
        trials_plot(trained["number"].tolist(), trained["val_accuracy"].tolist(), trained["seconds"].tolist(),
                    folder / "trials.png", title),
    ]
    if multi and trials:
        values = [[t.values[n] for n in objectives] for t in trials]
        numbers = [t.number for t in trials]
        files.append(pareto_front_plot(
            values, list(objectives.values()), list(objectives), folder / "pareto_front.png",
            infeasible=[i for i, t in enumerate(trials) if not t.feasible],
            selected=numbers.index(selected) if selected in numbers else None, numbers=numbers, title=title))
        reference = reference or pareto.reference_point(trials, objectives, {})
        history = pareto.trial_hypervolumes(trials, objectives, reference)
        files.append(hypervolume_plot(history, folder / "hypervolume.png", reference=list(reference.values()),
                                      numbers=numbers, title=title))
    files += _oneshot_reports(study, folder, title)
    for name in SEARCH_KIND_PLOTS - {f.name for f in files}:  # an earlier search's, which would pass for this one's
        (folder / name).unlink(missing_ok=True)
    return files


def _oneshot_reports(study: optuna.Study, folder: Path, title: str) -> list[Path]:
    """For a one-shot search (nas.search.oneshot: a trial per supernet epoch): ``alphas.png``, softmax(α) after the
    last epoch, and ``oneshot_epochs.png``, the derived architecture's score and its share of parameter-free ops per
    epoch."""
    from nas.oneshot.analysis import parameter_free_share
    from nas.search.oneshot import ALPHAS_ATTR, EPOCH_ATTR

    epochs = sorted((t.user_attrs[EPOCH_ATTR], t) for t in study.get_trials(deepcopy=False, states=(
        optuna.trial.TrialState.COMPLETE,)) if EPOCH_ATTR in t.user_attrs)
    if not epochs:
        return []
    from nas.oneshot.base import SUPERNETS
    from nas.spaces import SPACES

    space_name = "darts" if "normal" in epochs[-1][1].user_attrs[ALPHAS_ATTR] else "nb201"
    space = SPACES[space_name]
    alphas = {cell: np.array(a) for cell, a in epochs[-1][1].user_attrs[ALPHAS_ATTR].items()}
    shares = [parameter_free_share(space.decode(t.user_attrs["arch"])) for _, t in epochs]
    supernet = SUPERNETS[space_name]
    kept = supernet.arch_weights(space.decode(epochs[-1][1].user_attrs["arch"]))
    return [alpha_heatmap(alphas, supernet.labels(), folder / "alphas.png",
                          f"{title}: softmax(α) after epoch {epochs[-1][0]}", kept),
            oneshot_epochs_plot([e for e, _ in epochs], [t.value for _, t in epochs], shares,
                                folder / "oneshot_epochs.png", title)]


def top_trials(trials: Sequence[Any], k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` completed trials of highest val accuracy, best first, as table rows (trials outside
    ``search.constraints`` were not trained: they are left out)."""
    best = sorted((t for t in trials if t.feasible), key=lambda t: t.val_accuracy, reverse=True)[:k]
    return [{"trial": t.number, "val_accuracy": round(t.val_accuracy, 4), "seconds": round(t.seconds, 1),
             "arch": t.arch} for t in best]


def search_summary(found: dict[str, Any]) -> str:
    """One markdown line on a search, from what ``models/search.json`` records."""
    best = found["best"]
    pruned = f" ({found['pruned']} pruned)" if found.get("pruned") else ""
    return (f"Study `{found['study_name']}`: `{found['strategy']}` on `{found['space']}`, {found['n_trials']} "
            f"completed trials{pruned}; best trial #{best['number']}, val accuracy {best['val_accuracy']:.4f}: "
            f"`{best['arch']}`")
