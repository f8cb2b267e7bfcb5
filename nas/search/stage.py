"""Stage ``search``: run the configured strategy over the configured space, tracked in MLflow, logged in Optuna.

Output: ``models/search.json``, the best trial and where the study and the runs live (the evaluate stage reports
on the whole study).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import optuna
import yaml

from nas.config import Params
from nas.data import PreparedData, load_prepared
from nas.estimation import Result, estimate
from nas.search.runner import Objective, fail_orphans, open_study, run_search
from nas.spaces import SPACES, NetworkConfig
from nas.stores import redact
from nas.strategies import make_sampler
from nas.tracking import SearchTracker, git_commit, tracking_uri
from nas.training import Diverged, pick_device, train_config
from nas.training.loop import EpochCallback

SEARCH_JSON = Path("models/search.json")


def study_identity(params: Params, data: PreparedData) -> dict[str, Any]:
    """What makes two searches the same search (n_trials is not part of it: raising it extends the study)."""
    s = params.search
    identity = s.model_dump(exclude={"n_trials", "storage", "study_name"})
    identity["dataset"] = params.data.dataset
    identity["data_sha256"] = {k: v["sha256"] for k, v in data.manifest["splits"].items() if k != "test"}
    return identity


def default_study_name(params: Params, identity: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    s = params.search
    return f"{s.space}-{s.strategy}-{params.data.dataset}-{digest}"


def dvc_data_hash(lock: Path = Path("dvc.lock"), out: str = "data/prepared") -> str:
    """The md5 DVC recorded for the prepared data, or 'untracked' outside a DVC pipeline."""
    if not lock.is_file():
        return "untracked"
    for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
        for entry in stage.get("outs", []):
            if entry.get("path") == out:
                return str(entry.get("md5", "untracked"))
    return "untracked"


def make_objective(params: Params, data: PreparedData, tracker: SearchTracker | None, device: str) -> Objective:
    s = params.search
    space = SPACES[s.space]
    network = NetworkConfig(s.channels, s.cells_per_stage, data.in_channels, data.num_classes)
    # Every trial trains with the same seed: candidates are compared under the same initialisation and batch order,
    # and a resumed search (whose trial numbers may have a gap) trains each architecture exactly as before.
    config = train_config(s, device, params.data.dataset)
    train_params = {k: getattr(config, k) for k in ("epochs", "batch_size", "lr", "momentum", "weight_decay", "seed")}
    train_params |= {"channels": s.channels, "cells_per_stage": s.cells_per_stage}

    def objective(number: int, arch: Hashable, on_epoch_end: EpochCallback) -> Result:
        run = tracker.start_trial(number, space.encode(arch), train_params) if tracker else None
        try:
            result = estimate(arch, space, data, network, config, [on_epoch_end, *([run.on_epoch_end] if run else [])])
        except Diverged as exc:
            if run:
                run.fail(str(exc))
            raise
        except BaseException:
            if run:
                run.fail()
            raise
        if run:
            run.finish({"n_params": result.n_params, "train_seconds": result.seconds})
        return result

    return objective


def search(params: Params, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the search; returns what ``models/search.json`` records."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = params.search
    data = load_prepared(params.data.out, params.data)
    space = SPACES[s.space]
    identity = study_identity(params, data)
    study_name = s.study_name or default_study_name(params, identity)
    sampler = make_sampler(s.strategy, space, s.seed, s.strategy_options)
    study = open_study(s.storage, study_name, sampler, identity)
    uri = tracking_uri(params.tracking.uri)
    tracker = SearchTracker.start(
        uri, params.tracking.experiment, study_name,
        params={"space": s.space, "strategy": s.strategy, "budget": s.n_trials, "dataset": params.data.dataset,
                "seed": s.seed, "epochs": s.epochs, "channels": s.channels, "cells_per_stage": s.cells_per_stage,
                **{f"strategy.{k}": v for k, v in s.strategy_options.items()}},
        tags={"git_commit": git_commit(), "data_dvc_md5": dvc_data_hash()},
        storage=s.storage,
    )
    device = pick_device()
    report(f"[search] study {study_name!r} in {redact(s.storage)}; {s.strategy} on {s.space}, {s.n_trials} trials, "
           f"device {device}; MLflow run {tracker.parent_run_id} at {redact(uri)}")
    try:
        tracker.mark_killed(fail_orphans(study, report))
        trials = run_search(study, space, make_objective(params, data, tracker, device), s.n_trials, report)
    except BaseException:
        tracker.fail()
        raise
    best = max(trials, key=lambda t: t.val_accuracy)
    summary = {
        "study_name": study_name,
        "storage": redact(s.storage),  # a DVC output: never a password (evaluate reads the URL from params.yaml)
        "space": s.space,
        "strategy": s.strategy,
        "n_trials": len(trials),
        "best": {"number": best.number, "arch": best.arch, "val_accuracy": best.val_accuracy},
        "mlflow": {"tracking_uri": redact(uri), "experiment_id": tracker.experiment_id,
                   "parent_run_id": tracker.parent_run_id},
    }
    generations = getattr(getattr(sampler, "strategy", None), "generation", None)
    if generations is not None:  # generational strategies (NEAT): generations bred so far
        summary["generations"] = generations
    SEARCH_JSON.parent.mkdir(parents=True, exist_ok=True)
    SEARCH_JSON.write_text(json.dumps(summary, indent=2) + "\n")
    tracker.finish({"best_val_accuracy": best.val_accuracy, "completed_trials": len(trials)})
    report(f"[search] best trial #{best.number}: val_acc={best.val_accuracy:.4f}  {best.arch}")
    counts = data.manifest["splits"]["val"]["class_counts"]
    chance = max(counts) / sum(counts)  # always predicting the largest class
    if best.val_accuracy <= chance:
        report(f"[search] warning: no trial beat chance accuracy ({chance:.4f}); the training settings "
               f"(search.lr {s.lr}, search.epochs {s.epochs}) may not let any candidate learn")
    return summary
