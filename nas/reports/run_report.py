"""``reports/report.md``: the page a person reads after a run — what was searched, how, what was found, how good it
is, and which MLflow runs produced each number."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def write_report(path: Path, *, manifest: dict[str, Any], found: dict[str, Any], retrained: dict[str, Any],
                 metrics: dict[str, Any], top: list[dict[str, Any]], champion: str, generations: int | None) -> Path:
    """Args:
        metrics: everything the evaluate stage measured (``metrics.json`` and ``details.json`` together).
        top: the best trials, as ``nas.reports.top_trials`` gives them.
        generations: generations bred, for generational strategies (NEAT); None otherwise.
    """
    splits = manifest["splits"]
    mlflow = found["mlflow"]
    budget = (f"{found['n_trials']} completed trials" + (f", {found['pruned']} pruned" if found.get("pruned") else "")
              + (f" ({generations} generations)" if generations is not None else ""))
    lines = [
        f"# NAS run: {found['strategy']} on {found['space']} / {manifest['dataset']}",
        "",
        "## Data",
        f"{manifest['dataset']}: {manifest['num_classes']} classes, "
        f"images {'x'.join(map(str, manifest['image_shape']))}; "
        + ", ".join(f"{name} {s['shape'][0]}" for name, s in splits.items())
        + f" (split seed {manifest['split_seed']}).",
        "",
        "## Search",
        f"- space `{found['space']}`, strategy `{found['strategy']}`, budget used: {budget}",
        (f"- best validation accuracy during the search: **{found['best']['val_accuracy']:.4f}** "
         f"(trial {found['best']['number']})"),
        f"- Optuna study `{found['study_name']}` in `{found['storage']}`",
        (f"- MLflow: experiment {mlflow['experiment_id']}, search run `{mlflow['parent_run_id']}` ("
         + ("each supernet epoch as its metrics and artifacts" if found.get("oneshot", {}).get("derived")
            else "one child run per trial") + f") at `{mlflow['tracking_uri']}`"),
        "",
        "![search progress](search_progress.png)",
        "",
        "![trials](trials.png)",
        "",
        *_pareto_lines(found, retrained),
        *_oneshot_lines(found),
        "## Found architecture",
        f"`{retrained.get('arch', found['best']['arch'])}`",
        "",
        "![architecture](best_arch.png)",
        "",
        "## Retrained model",
        (f"- test accuracy **{metrics['test_accuracy']:.4f}** (95% CI {metrics['test_accuracy_ci95_low']:.4f}–"
         f"{metrics['test_accuracy_ci95_high']:.4f}, Wilson) on {metrics['test_samples']} held-out images"),
        (f"- {metrics['n_params']:,} parameters, {metrics['flops']:,} FLOPs per image, {metrics['model_size_mb']} MB; "
         f"CPU latency {metrics['cpu_latency_ms_batch1']} ms at batch 1, {metrics['cpu_latency_ms_batch256']} ms "
         "at batch 256"),
        (f"- exported as {metrics['export_format']}: largest difference from PyTorch "
         f"{metrics['export_max_abs_diff']:.1e} ({'within' if metrics['export_parity'] else 'OUTSIDE'} tolerance)"),
        (f"- MLflow: retrain run `{retrained['mlflow']['run_id']}`, registered "
         f"`{retrained['mlflow']['registered_model']}` version {retrained['mlflow']['version']}; "
         f"`@champion` is version {champion}"),
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "## Top 10 trials",
        "",
        "| trial | val accuracy | seconds | architecture |",
        "|---|---|---|---|",
        *(f"| {r['trial']} | {r['val_accuracy']:.4f} | {r['seconds']:.1f} | {_code_cell(r['arch'])} |" for r in top),
        "",
        "Reproduce: `dvc repro` with this `params.yaml` and the same git commit.",
        "",
    ]
    path.write_text("\n".join(lines))
    return path


def _code_cell(text: str) -> str:
    """``text`` as code in a table cell: NB201 strings contain "|", which ends a cell even inside code, so escaped."""
    return "`" + text.replace("|", "\\|") + "`"


def without_images(markdown: str) -> str:
    """The report for a page that cannot reach the PNG files next to it (a Prefect artifact): each image becomes
    its caption and file name."""
    return re.sub(r"!\[([^\]]*)\]\(([^)]+)\)", r"*\1: \2*", markdown)


def _oneshot_lines(found: dict[str, Any]) -> list[str]:
    """A one-shot search: the architecture derived after each supernet epoch."""
    if not found.get("oneshot", {}).get("derived"):  # weight sharing derives nothing: its best trial is retrained
        return []
    rows = [f"| {d['epoch']} | {d['val_accuracy']:.4f} | {_code_cell(d['arch'])} |"
            for d in found["oneshot"]["derived"]]
    return [
        "## One-shot search",
        f"- {found['oneshot']['epochs']} supernet epochs; the retrained architecture is the one derived after the last",
        "",
        "| epoch | val accuracy (weight sharing) | derived architecture |",
        "|---|---|---|",
        *rows,
        "",
        "![derived architecture per epoch](oneshot_epochs.png)",
        "",
        "![softmax(α)](alphas.png)",
        "",
    ]


def _pareto_lines(found: dict[str, Any], retrained: dict[str, Any]) -> list[str]:
    """The front of a multi-objective search, and which member was retrained (``retrain.select``)."""
    objectives = found.get("objectives") or {}
    if len(objectives) < 2:
        return []
    rows = [f"| {m['number']} | " + " | ".join(f"{m['values'][n]:.4g}" for n in objectives)
            + f" | {_code_cell(m['arch'])} |" for m in found["front"]]
    return [
        "## Pareto front",
        (f"- objectives: {', '.join(f'{n} ({d})' for n, d in objectives.items())}; {len(found['front'])} trial(s) "
         f"on the front, hypervolume {found['hypervolume']:.4g} from reference point {found['reference_point']}"),
        f"- retrained: trial {retrained.get('trial_number')} (`retrain.select: {retrained.get('select', 'best')}`)",
        "",
        "| trial | " + " | ".join(objectives) + " | arch |",
        "|---|" + "---|" * len(objectives) + "---|",
        *rows,
        "",
        "![Pareto front](pareto_front.png)",
        "",
        "![hypervolume](hypervolume.png)",
        "",
    ]
