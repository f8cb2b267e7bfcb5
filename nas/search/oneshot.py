"""The search stage for one-shot strategies (``search.strategy: darts | darts2 | gdas | snas``): one supernet trained
for ``search.oneshot.epochs`` (``nas.oneshot``), ending, as every search does, with an architecture value in
``models/search.json`` that retrain, evaluate and the registry take unchanged.

The Optuna study stays the trial log: after each supernet epoch the architecture derived from α is a COMPLETE trial
whose value is its weight-sharing score (the val accuracy of the supernet restricted to that architecture's ops),
with the epoch, the supernet's own losses and softmax(α) as attributes. MLflow's search run gets the same per epoch:
losses, softmax(α) per edge and op (``alpha/<cell>/<edge>/<op>``), a heatmap of α and the derived architecture.

Crash-safe: the whole search state (supernet, α, optimisers, temperature schedule position, generators) is written
to ``checkpoints/`` after every epoch, before the epoch's trial; a run killed at any point and started again resumes
from the last checkpoint to the same α and the same architecture as one never interrupted (CPU, same seed). An epoch
whose checkpoint was written but whose trial was not is recorded from the checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from nas.config import Params
from nas.data import Split, load_prepared, normalize
from nas.errors import UserError
from nas.execution.trial import HEARTBEAT_S, every
from nas.search.runner import _renew, claim, open_study, settle
from nas.search.stage import SEARCH_JSON, default_study_name, dvc_data_hash, study_identity
from nas.spaces import SPACES, NetworkConfig
from nas.stores import redact
from nas.strategy_registry import ONESHOT_KEYS
from nas.tracking import SearchTracker, open_tracking, refused_by_store, tracking_uri, ui_link
from nas.training import Diverged, pick_device
from nas.training.checkpoints import CheckpointError, read_checkpoint

CHECKPOINTS = Path("checkpoints")
EPOCH_ATTR = "oneshot_epoch"
ALPHAS_ATTR = "alphas"


def checkpoint_path(study_name: str, storage: str) -> Path:
    return CHECKPOINTS / f"oneshot-{hashlib.sha256(f'{storage}|{study_name}'.encode()).hexdigest()[:16]}.pt"


def _save(path: Path, state: dict[str, Any]) -> None:
    """Write-then-rename: a kill during the save leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _refused(checkpoint: Path, exc: Exception, study_name: str) -> str:
    return (f"{checkpoint}: {exc}: it is study {study_name!r}'s checkpoint from other settings; choose another "
            "search.study_name, or delete it to start the search over")


def _load(path: Path) -> dict[str, Any]:
    try:
        state = read_checkpoint(path, weights_only=False)
    except CheckpointError as exc:  # damaged, truncated or foreign
        raise UserError(f"{path}: not a readable one-shot checkpoint: {exc}; delete it to start the search "
                        "over") from None
    if not isinstance(state, dict) or not {"search", "history"} <= state.keys():
        raise UserError(f"{path}: not a one-shot checkpoint (it holds {type(state).__name__} without its 'search' "
                        "and 'history'); delete it to start the search over")
    return state


@contextlib.contextmanager
def _held(study: optuna.Study) -> Iterator[None]:
    """Keep the study's lease renewed while an epoch trains (epochs outlast the lease), released at the end."""
    try:
        with every(HEARTBEAT_S, lambda: _renew(study), "oneshot-lease"):
            yield
    finally:
        _renew(study, at=0.0)  # released: a next start need not wait for it


def start_tracker(params: Params, uri: str, study: optuna.Study, report: Callable[[str], None],
                  **extra: Any) -> SearchTracker:
    """The search's MLflow run (resumed when it exists), runs of trials a dead process left closed."""
    s = params.search
    tracker = SearchTracker.start(
        uri, params.tracking.experiment, study.study_name,
        params={"space": s.space, "strategy": s.strategy, "dataset": params.data.dataset, "seed": s.seed,
                "channels": s.channels, "cells_per_stage": s.cells_per_stage, **extra,
                **{f"oneshot.{k}": v for k, v in s.oneshot_settings.model_dump().items()
                   if k in ONESHOT_KEYS[s.strategy]}},  # what the strategy reads, as params.yaml may set
        tags={"data_dvc_md5": dvc_data_hash()}, storage=s.storage, study=study)
    settle(study, report)
    with refused_by_store(uri, "bringing the trials' runs up to date"):
        tracker.reconcile(study)  # the runs of trials a killed process left: as the study has them
    return tracker


def alpha_metrics(labels: dict[str, tuple[list[str], tuple[str, ...]]], alphas: dict[str, np.ndarray]
                  ) -> dict[str, float]:
    """softmax(α) as MLflow metrics ``alpha/<cell>/<i>_to_<j>/<op>``."""
    return {f"alpha/{cell}/{edge.replace('->', '_to_')}/{op}": float(alphas[cell][r, c])
            for cell, (edges, ops) in labels.items() for r, edge in enumerate(edges) for c, op in enumerate(ops)}


def _epoch_trials(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.user_attrs[EPOCH_ATTR]: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if EPOCH_ATTR in t.user_attrs}


def _add_trial(study: optuna.Study, space: Any, record: dict[str, Any]) -> None:
    arch = space.decode(record["arch"])
    study.add_trial(optuna.trial.create_trial(
        params=space.to_params(arch), distributions=space.distributions(), value=record["val_accuracy"],
        user_attrs={"arch": record["arch"], "seconds": record["metrics"]["seconds"], EPOCH_ATTR: record["epoch"],
                    **{f"supernet_{k}": v for k, v in record["metrics"].items() if k != "seconds"},
                    ALPHAS_ATTR: {cell: np.round(a, 6).tolist() for cell, a in record["alphas"].items()}}))


def _heatmap(supernet: Any, space: Any, record: dict[str, Any], folder: str, title: str) -> str:
    """The α heatmap of an epoch's ``record``, its derived architecture's edges outlined."""
    from nas.reports.plots import alpha_heatmap

    kept = supernet.arch_weights(space.decode(record["arch"]))
    return str(alpha_heatmap(record["alphas"], supernet.labels(), Path(folder) / "alphas.png", title, kept))


def search_oneshot(params: Params, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the one-shot search; returns what ``models/search.json`` records."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = params.search
    data = load_prepared(params.data.out, params.data)
    space = SPACES[s.space]
    identity = study_identity(params, data)
    study_name = s.study_name or default_study_name(params, identity)
    device = pick_device()
    # One intra-op thread, as every trial trains: CPU kernels sum in another order with another thread count, and a
    # resumed search must end as an uninterrupted one (threads also oversubscribe a busy machine badly: 14 s against
    # 0.3 s per NB201 epoch here with another process on the second core).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _search(params, report, data, space, identity, study_name, device)
    finally:
        torch.set_num_threads(threads)


def _search(params: Params, report: Callable[[str], None], data: Any, space: Any, identity: dict[str, Any],
            study_name: str, device: str) -> dict[str, Any]:
    from nas.oneshot import OneShotConfig, make_search
    from nas.search.weight_sharing import SEARCHERS, search_weight_sharing

    if params.search.strategy in SEARCHERS:  # a strategy over a weight-sharing estimator
        return search_weight_sharing(params, report, data, space, identity, study_name, device)

    s, o = params.search, params.search.oneshot_settings
    network = NetworkConfig(s.channels, s.cells_per_stage, data.in_channels, data.num_classes)
    config = OneShotConfig(**{k: v for k, v in o.model_dump().items() if k in OneShotConfig.__dataclass_fields__})
    searcher = make_search(s.strategy, s.space, network, config, s.seed, device)
    labels = searcher.supernet.labels()
    # The supernet trains on the train split and α (and the scores) on the val split, normalised as every search's.
    train, val = (Split(normalize(d.x, data.manifest), d.y) for d in (data.train, data.val))
    checkpoint = checkpoint_path(study_name, redact(s.storage))
    history: list[dict[str, Any]] = []
    if checkpoint.is_file():
        state = _load(checkpoint)
        try:
            searcher.load_state_dict(state["search"])
        except (KeyError, ValueError) as exc:
            raise UserError(_refused(checkpoint, exc, study_name)) from None
        history = state["history"]
    # The sampler is never asked: trials are added as the epochs end.
    study = open_study(s.storage, study_name, optuna.samplers.RandomSampler(seed=s.seed), identity)
    uri = tracking_uri(params.tracking.uri)
    open_tracking(uri, params.tracking.experiment)  # an unusable MLflow store, before the study is touched
    claim(study, report)
    tracker = None
    with _held(study):
        try:
            tracker = start_tracker(params, uri, study, report)
            report(f"[search] study {study_name!r} in {redact(s.storage)}; one-shot {s.strategy} on {s.space}, "
                   f"{o.epochs} supernet epochs, device {device}; MLflow run {tracker.parent_run_id} at {redact(uri)}"
                   + (f"; resuming after epoch {searcher.epochs_done} from {checkpoint}" if history else ""))
            def log(record: dict[str, Any]) -> None:
                with tempfile.TemporaryDirectory() as tmp:
                    png = _heatmap(searcher.supernet, space, record, tmp,
                                   f"{s.strategy} on {s.space}, epoch {record['epoch']}")
                    tracker.log_epoch(record["epoch"], {**{f"supernet_{k}": v for k, v in record["metrics"].items()},
                                                        "derived_val_accuracy": record["val_accuracy"],
                                                        **alpha_metrics(labels, record["alphas"])},
                                      artifacts={png: f"alphas/epoch_{record['epoch']:03d}"},
                                      texts={f"derived/epoch_{record['epoch']:03d}.txt": record["arch"] + "\n"})

            recorded, logged = _epoch_trials(study), tracker.epochs_logged("derived_val_accuracy")
            for record in history:  # killed after a checkpoint, before its trial or its MLflow epoch
                if record["epoch"] not in recorded:
                    _add_trial(study, space, record)
                if record["epoch"] not in logged:
                    log(record)
            # Run again after it ended (dvc repro): the study holds every epoch, nothing is trained again.
            finished = not history and all(e in recorded for e in range(1, o.epochs + 1))
            for epoch in range(o.epochs if finished else searcher.epochs_done, o.epochs):
                try:
                    metrics = searcher.run_epoch(train, val, epoch)
                except Diverged as exc:
                    raise UserError(f"search: the supernet's training loss is {exc.loss} at epoch {epoch + 1}; lower "
                                    "search.oneshot.w_lr") from None
                arch = searcher.derive()
                score = searcher.evaluate_arch(arch, val)
                record = {"epoch": epoch + 1, "arch": space.encode(arch), "val_accuracy": score, "metrics": metrics,
                          "alphas": searcher.alphas()}
                history.append(record)
                _save(checkpoint, {"search": searcher.state_dict(), "history": history})
                if epoch + 1 not in recorded:  # a search restarted without its checkpoint repeats recorded epochs
                    _add_trial(study, space, record)
                if epoch + 1 not in logged:
                    log(record)
                _renew(study)
                extra = f" tau {metrics['temperature']:.3g}" if "temperature" in metrics else ""
                report(f"[search] epoch {epoch + 1}/{o.epochs}: train_loss {metrics['train_loss']:.4f} supernet "
                       f"val_acc {metrics['val_accuracy']:.4f}{extra}; derived val_acc {score:.4f} "
                       f"({metrics['seconds']:.1f}s)  {record['arch']}")
            if not history:  # run again after it ended: the study holds the search
                history = [{"epoch": e, "arch": t.user_attrs["arch"], "val_accuracy": t.value,
                            "alphas": {c: np.array(a) for c, a in t.user_attrs[ALPHAS_ATTR].items()}}
                           for e, t in sorted(_epoch_trials(study).items())]
            final = history[-1]
            number = _epoch_trials(study)[final["epoch"]].number
            summary = {
                "study_name": study_name, "storage": redact(s.storage), "space": s.space, "strategy": s.strategy,
                "n_trials": len(history), "pruned": 0,
                # DARTS's result is the architecture derived at the end, not the best-scoring epoch's.
                "best": {"number": number, "arch": final["arch"], "val_accuracy": final["val_accuracy"],
                         "values": {"val_accuracy": final["val_accuracy"]}},
                "objectives": {"val_accuracy": "maximize"}, "front": [],
                "oneshot": {"epochs": o.epochs, "derived": [{"epoch": r["epoch"], "arch": r["arch"],
                                                             "val_accuracy": r["val_accuracy"]} for r in history]},
                "mlflow": {"tracking_uri": redact(uri), "experiment_id": tracker.experiment_id,
                           "ui": ui_link(redact(uri), tracker.experiment_id), "parent_run_id": tracker.parent_run_id},
            }
            SEARCH_JSON.parent.mkdir(parents=True, exist_ok=True)
            SEARCH_JSON.write_text(json.dumps(summary, indent=2) + "\n")
            with tempfile.TemporaryDirectory() as tmp:
                png = _heatmap(searcher.supernet, space, final, tmp, f"{s.strategy} on {s.space}, final α")
                tracker.finish({"best_val_accuracy": final["val_accuracy"], "completed_trials": len(history)}, [png])
        except BaseException:
            if tracker is not None:
                tracker.fail()
            raise
    checkpoint.unlink(missing_ok=True)  # the study holds the search now
    report(f"[search] derived architecture after {len(history)} epochs: val_acc={final['val_accuracy']:.4f} "
           f"(weight sharing)  {final['arch']}")
    report(f"[search] the search in MLflow's UI: {summary['mlflow']['ui']}")
    return summary
