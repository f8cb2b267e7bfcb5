"""Stage ``retrain``: train the search's best architecture at full size and register it in MLflow.

Writes ``models/best.pt`` (weights plus everything needed to rebuild and feed the network) and
``models/retrain.json`` (the MLflow run and registered model version).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.config import Params
from nas.data import load_prepared, normalize
from nas.errors import UserError, first_line
from nas.estimation.cost import count_params
from nas.search import pareto
from nas.serving import PREPROCESSING_KEY, preprocessing
from nas.spaces import SPACES, NetworkConfig
from nas.stores import redact
from nas.tracking import RetrainRun, git_commit, tracking_uri
from nas.training.checkpoints import CheckpointError, read_checkpoint
from nas.training.loop import Diverged, init_model, pick_device, train, train_config
from nas.training.progress import epoch_progress

BEST_PT = Path("models/best.pt")
RETRAIN_JSON = Path("models/retrain.json")
# Per-epoch training state. Not a DVC output (dvc repro deletes outputs before it runs a stage): an interrupted
# retrain resumes from here, and the file is removed once the stage has finished.
CHECKPOINTS = Path("checkpoints")


def read_output(path: Path, stage: str) -> dict[str, Any]:
    """A JSON file an earlier stage wrote; a clear error when that stage has not run."""
    if not path.is_file():
        raise UserError(f"{path}: not found; run the {stage} stage first (dvc repro {stage})")
    try:
        content = json.loads(path.read_text())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise UserError(f"{path}: not JSON ({first_line(exc)}); rerun the {stage} stage (dvc repro {stage})") from None
    if not isinstance(content, dict):
        raise UserError(f"{path}: holds a {type(content).__name__}, not what the {stage} stage writes; rerun it "
                        f"(dvc repro {stage})")
    return content


def searched(found: dict[str, Any], how: str, path: Path = Path("models/search.json")) -> tuple[dict[str, Any], Any]:
    """The trial ``retrain.select`` (``how``) picks from the search stage's output, and its architecture decoded; a
    file that is not what the search stage writes (an architecture pasted in by hand, say) is one error line."""
    if not isinstance(found.get("space"), str) or found["space"] not in SPACES:
        raise UserError(f"{path}: space {found.get('space')!r} is not one of {', '.join(SPACES)}")
    try:
        chosen = select(found, how)
        missing = [k for k in ("study_name", "strategy", "mlflow") if k not in found] + [
            k for k in ("arch", "number") if k not in chosen]
    except (KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not what the search stage writes ({type(exc).__name__}: {first_line(exc)}); rerun "
                        "it (dvc repro search)") from None
    if missing:
        raise UserError(f"{path}: not what the search stage writes (no {', '.join(missing)}); rerun it "
                        "(dvc repro search)")
    try:
        return chosen, SPACES[found["space"]].decode(chosen["arch"])
    except (ValueError, TypeError, AttributeError) as exc:  # a genotype's errors are ValueErrors; a number is not text
        raise UserError(f"{path}: trial {chosen['number']}'s arch is not a {found['space']} architecture: "
                        f"{first_line(exc)}") from None


def serving_inputs(manifest: dict[str, Any], images: torch.Tensor) -> tuple[np.ndarray, dict[str, Any]]:
    """What a registered model carries besides its weights: an input example (``images``, uint8, at least two: the
    graph is exported with a dynamic batch) as the network takes it, normalised, and the preprocessing it needs as
    metadata, so ``nas predict`` can use the model without the data folder."""
    return normalize(images, manifest).numpy(), {PREPROCESSING_KEY: preprocessing(manifest)}


def data_hash(manifest: dict[str, Any]) -> str:
    """One hash for the prepared data: of the split files' own SHA-256s."""
    digests = "".join(manifest["splits"][name]["sha256"] for name in sorted(manifest["splits"]))
    return hashlib.sha256(digests.encode()).hexdigest()[:16]


def load_checkpoint(path: str | Path = BEST_PT, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the retrained network from ``models/best.pt``; returns the model (eval mode) and the checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: not found; run the retrain stage first (dvc repro retrain)")
    try:
        ckpt = read_checkpoint(path, weights_only=True, map_location=device)
        space = SPACES[ckpt["space"]]
        model = space.build(space.decode(ckpt["arch"]), NetworkConfig(**ckpt["network"]))
        model.load_state_dict(ckpt["state_dict"])
    except CheckpointError as exc:
        raise UserError(f"{path}: not a readable checkpoint: {exc}; rerun the retrain stage "
                        "(dvc repro retrain)") from None
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as exc:  # load_state_dict: RuntimeError
        raise UserError(f"{path}: not what the retrain stage writes ({type(exc).__name__}: {first_line(exc)[:200]}); "
                        "rerun it (dvc repro retrain)") from None
    return model.to(device).eval(), ckpt


def select(found: dict[str, Any], how: str) -> dict[str, Any]:
    """The searched trial ``retrain.select`` names (``best``, ``knee``, ``under:<objective>=<bound>``), from what
    ``models/search.json`` records: ``{"number", "arch", "val_accuracy", "values"}``.

    ``knee`` is the knee of the Pareto front (``nas.search.pareto.knee``); a front of one or two members has none
    (each is an extreme), and ``knee`` is then ``best``. ``under`` is the front member with the best val_accuracy
    among those within the bound (at most it for an objective minimised, at least for one maximised). With one
    objective the front is the best trial, and every choice is it.
    """
    members = found.get("front") or [found["best"]]
    objectives = found.get("objectives") or {"val_accuracy": "maximize"}
    if how == "best" or len(members) <= 2 and how == "knee":
        return found["best"]
    if how == "knee":
        chosen = members[pareto.knee(pareto.costs([[m["values"][n] for n in objectives] for m in members],
                                                  list(objectives.values())))]
    else:
        name, bound = how.removeprefix("under:").split("=")
        if name not in objectives:
            raise UserError(f"retrain.select: {name} is not an objective of the search in models/search.json "
                            f"(objectives: {', '.join(objectives)})")
        within = [m for m in members if (m["values"][name] <= float(bound) if objectives[name] == "minimize"
                                         else m["values"][name] >= float(bound))]
        if not within:
            closest = min(m["values"][name] for m in members) if objectives[name] == "minimize" else max(
                m["values"][name] for m in members)
            raise UserError(f"retrain.select: no member of the Pareto front has {name} within {bound} (the closest "
                            f"has {closest:.4g}); loosen the bound or search with search.constraints")
        chosen = max(within, key=lambda m: m["values"]["val_accuracy"])
    return {**chosen, "val_accuracy": chosen["values"]["val_accuracy"]}


def retrain(params: Params, search_json: Path = Path("models/search.json"),
            report: Callable[[str], None] = print) -> dict[str, Any]:
    found = read_output(search_json, "search")
    chosen, arch = searched(found, params.retrain.select, search_json)  # found["best"]: the search's best, kept
    if params.retrain.select == "knee" and len(found.get("front") or []) == 2:
        report("[retrain] retrain.select: knee, but a front of two members has no knee: the most accurate one")
    r = params.retrain
    space = SPACES[found["space"]]
    data = load_prepared(params.data.out, params.data)
    device = pick_device()
    network = NetworkConfig(r.channels, r.cells_per_stage, data.in_channels, data.num_classes,
                            auxiliary=r.auxiliary_weight > 0)
    config = train_config(r, device, params.data.dataset)
    model = init_model(lambda: space.build(arch, network), r.seed)
    n_params = count_params(model)  # the deployed network's: DARTS's auxiliary head is not counted
    report(f"[retrain] {chosen['arch']} at C={r.channels}, N={r.cells_per_stage} ({n_params:,} params) "
           f"for {r.epochs} epochs on {device}")

    uri = tracking_uri(params.tracking.uri)
    run = RetrainRun.start(
        uri, params.tracking.experiment, found["mlflow"]["experiment_id"], found["mlflow"]["parent_run_id"],
        tags={"optuna_study": found["study_name"], "optuna_trial_number": str(chosen["number"])},
        params={"arch": chosen["arch"], "device": device, **r.model_dump()},
    )
    started = time.perf_counter()

    def progress(epoch: int, metrics: dict[str, float]) -> None:
        report(f"[retrain] epoch {epoch + 1}/{r.epochs}  train_loss={metrics['train_loss']:.4f}  "
               f"val_acc={metrics['val_accuracy']:.4f}  {time.perf_counter() - started:.0f}s")

    identity = json.dumps([chosen["arch"], asdict(network), asdict(config), data.manifest], sort_keys=True)
    checkpoint = CHECKPOINTS / f"retrain-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.pt"
    if checkpoint.is_file():
        report(f"[retrain] resuming from {checkpoint}")
    lineage = {"optuna_study": found["study_name"], "optuna_trial_number": str(chosen["number"]),
               "arch": chosen["arch"], "space": found["space"], "strategy": found["strategy"],
               "data_hash": data_hash(data.manifest), "git_commit": git_commit(), "retrain_run_id": run.run_id}
    try:
        bar = epoch_progress(r.epochs, "retrain")
        history = train(model, data, config, [run.on_epoch_end, progress, bar], checkpoint=checkpoint)
        run.log_resumed({k: history[k] for k in ("train_loss", "val_accuracy")}, history["resumed_from"])
        model = model.cpu().eval()
        BEST_PT.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {"state_dict": model.state_dict(), "space": found["space"], "arch": chosen["arch"],
             "network": asdict(network), "manifest": data.manifest, "search": found},
            BEST_PT,
        )
        registered = run.register_model(model, *serving_inputs(data.manifest, data.test.x[:2]),
                                        params.tracking.model_name, tags=lineage)
    except Diverged as exc:  # nothing is registered: a model with NaN weights must not reach the registry
        run.fail(str(exc))
        raise UserError(f"retrain: {exc}; lower retrain.lr or raise retrain.warmup_epochs") from None
    except BaseException:
        run.fail()
        raise
    run.finish({"train_seconds": history["seconds"], "n_params": n_params})
    checkpoint.unlink(missing_ok=True)
    summary = {
        "arch": chosen["arch"],
        "trial_number": chosen["number"],
        "select": r.select,
        "val_accuracy": history["val_accuracy"][-1],
        "train_seconds": history["seconds"],
        "device": device,
        "resumed_from_epoch": history["resumed_from"],
        "mlflow": {"tracking_uri": redact(uri), "run_id": run.run_id, "model_uri": registered.model_uri,
                   "registered_model": registered.name, "version": registered.version},
    }
    RETRAIN_JSON.write_text(json.dumps(summary, indent=2) + "\n")
    report(f"[retrain] val_acc={summary['val_accuracy']:.4f}; registered {params.tracking.model_name} "
           f"version {registered.version}")
    return summary
