"""Stage ``search``: run the configured strategy over the configured space, tracked in MLflow, logged in Optuna.

Output: ``models/search.json``, the best trial, the Pareto front of a multi-objective search, and where the study and
the runs live (the evaluate stage reports on the whole study).

Objectives other than ``val_accuracy`` (parameters, FLOPs, latency) are measured before training on the network at
the retrain stage's size (``retrain.channels``, ``retrain.cells_per_stage``): the network that is deployed, not the
reduced one the search trains. An architecture that breaks a ``search.constraints`` bound on one of them is not
trained.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
import warnings
import zlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch
import yaml

from nas.config import DataParams, Params
from nas.data import PreparedData, load_prepared, normalize
from nas.errors import UserError, first_line
from nas.estimation import Result, estimate
from nas.execution import executor
from nas.execution.trial import Objective
from nas.search import pareto
from nas.search.pruners import Pruned, Pruning
from nas.search.runner import claim, open_study, recorded_attrs, run_search, settle
from nas.spaces import SPACES, NetworkConfig
from nas.stores import redact, sqlite_path
from nas.strategies import make_sampler
from nas.tracking import SearchTracker, flush_trackers, open_tracking, refused_by_store, tracking_uri, ui_link
from nas.training import Diverged, TrainConfig, init_model, pick_device, train_config
from nas.training.checkpoints import CheckpointError, read_checkpoint
from nas.training.loop import EpochCallback
from nas.training.progress import epoch_progress

SEARCH_JSON = Path("models/search.json")


# Keys added after studies were first made: at their defaults they are left out of a study's identity, so a study
# made before them is still found and resumed.
_LATER_KEYS = ("objectives", "constraints", "pruner", "min_epochs", "max_epochs", "reduction_factor",
               "latency_batch_size", "latency_device", "oneshot", "curve_threshold", "inherit", "child_epochs",
               "zero_cost_warmup")


def study_identity(params: Params, data: PreparedData) -> dict[str, Any]:
    """What makes two searches the same search (n_trials is not part of it: raising it extends the study)."""
    s = params.search
    # Who runs the trials (workers, executor, dask_address) is not part of it: the same seed gives the same trials.
    identity = s.model_dump(exclude={"n_trials", "storage", "study_name", "workers", "executor", "dask_address",
                                     "timeout_s"})
    defaults = type(s)().model_dump()
    identity = {k: v for k, v in identity.items() if k not in _LATER_KEYS or v != defaults[k]}
    if len(s.directions) > 1:  # the costs are measured on the network at the retrain stage's size
        identity["cost_network"] = [params.retrain.channels, params.retrain.cells_per_stage]
    identity["dataset"] = params.data.dataset
    identity["data_sha256"] = {k: v["sha256"] for k, v in data.manifest["splits"].items() if k != "test"}
    return identity


def same_latency_hardware(study: optuna.Study, params: Params) -> None:
    """A search that times ``latency_ms`` records the hardware it is timed on (the CPU model or the GPU's name) in its
    study; resumed on other hardware it is refused, as milliseconds of two machines do not belong on one front. A
    study from before the record takes this machine's. With Dask, the workers time the trials: their hardware is
    taken to be the driver's."""
    s = params.search
    if "latency_ms" not in s.directions and "latency_ms" not in s.constraints:
        return
    from nas.estimation.cost import device_name

    here = device_name(pick_device() if s.latency_device == "auto" else s.latency_device)
    recorded = study.user_attrs.get(LATENCY_HARDWARE_ATTR)
    if recorded is None:
        study.set_user_attr(LATENCY_HARDWARE_ATTR, here)
    elif recorded != here:
        raise UserError(f"search.latency_device: study {study.study_name!r} timed latency_ms on {recorded!r}, and "
                        f"this is {here!r}: milliseconds of two machines do not belong on one front; resume it there, "
                        "or set search.study_name to start a new study here")


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


# search.inherit: trial k's trained weights are INHERIT_DIR/<study>/trial-k.pt (kept out of DVC's outs, like the
# one-shot checkpoints: dvc repro would delete them before a resumed search needs them).
INHERIT_DIR = Path("checkpoints") / "inherit"
# The study attribute that records the zero-cost warm-up's architectures (encoded, best first).
WARMUP_ATTR = "zero_cost_warmup"
LATENCY_HARDWARE_ATTR = "latency_hardware"


@functools.lru_cache(maxsize=2)
def _prepared(folder: str, expected: DataParams) -> PreparedData:
    return load_prepared(folder, expected)  # once per worker process


@dataclass(frozen=True)
class TrainingObjective:
    """Scores an architecture by training it (the low-fidelity estimator), tracked as a child run of the search's
    MLflow run. A plain value, so a Dask worker on another host can run it: it reads the prepared data and reaches the
    MLflow store by itself."""

    space: str
    data_folder: str
    data: DataParams
    network: NetworkConfig
    config: TrainConfig
    tracking: tuple[str, str, str] | None  # (tracking URI, experiment id, parent run id)
    driver: int  # process id of the search: its own tracker writes in the background
    workers: int = 1
    # search.inherit: the folder of the trials' trained weights (checkpoints/inherit/<study>), and a child's epochs.
    checkpoints: str | None = None
    child_epochs: int | None = None

    @property
    def inherits(self) -> bool:
        """Whether a trial starts from its parent trial's weights (the runner then says which trial that is)."""
        return self.checkpoints is not None

    def __call__(self, number: int, arch: Hashable, on_epoch_end: EpochCallback, budget: int | None = None,
                 parent: int | None = None) -> Result:
        """Train ``arch``; ``budget``: epochs (a multi-fidelity strategy's choice) instead of the configured ones;
        ``parent``: the trial whose trained weights ``arch`` inherits (``search.inherit``)."""
        # One intra-op thread per trial wherever it runs: CPU kernels sum in another order with another thread count,
        # and the results must not depend on how many trials run at once (see README "Parallel workers").
        torch.set_num_threads(1)
        space = SPACES[self.space]
        tracker = SearchTracker.attach(*self.tracking) if self.tracking else None
        config = self.config if budget is None else replace(self.config, epochs=budget)
        model, inherited = None, None
        if parent is not None and self.checkpoints is not None:
            model, transfer = self._inherit(space, arch, parent)
            if model is not None:
                config = replace(config, epochs=self.child_epochs or config.epochs)
                inherited = str(transfer)[:6000]
            else:  # the child still trains, from scratch and for the full epochs; its run and a warning say so
                missing = Path(self.checkpoints) / f"trial-{parent}.pt"
                inherited = (f"nothing: {missing} is missing (deleted, or written on another host), so this child "
                             f"trained from scratch for {config.epochs} epochs")
                warnings.warn(f"trial #{number}: its parent trial #{parent}'s weights: {inherited}", stacklevel=1)
        params = {k: getattr(config, k) for k in ("epochs", "batch_size", "lr", "momentum", "weight_decay", "seed")}
        params |= {"channels": self.network.channels, "cells_per_stage": self.network.cells_per_stage}
        if inherited is not None:
            params |= {"parent_trial": parent, "inherited": inherited}
        run = tracker.start_trial(number, space.encode(arch), params) if tracker else None
        # The run records each epoch before the pruner may stop the trial in on_epoch_end.
        callbacks = [*([run.on_epoch_end] if run else []), on_epoch_end]
        if os.getpid() == self.driver:  # a bar per running trial, below the trials bar (Dask workers have no terminal)
            callbacks.append(epoch_progress(config.epochs, f"trial #{number}", 1 + number % self.workers))
        try:
            if self.checkpoints is not None and model is None:
                model = init_model(lambda: space.build(arch, self.network), config.seed)
            result = estimate(arch, space, _prepared(self.data_folder, self.data), self.network, config, callbacks,
                              model)
        except Pruned as exc:
            if run:
                run.prune(exc.epoch, exc.reason)
            raise
        except Diverged as exc:
            if run:
                run.fail(str(exc))
            raise
        except BaseException:
            if run:
                run.fail()
            raise
        if self.checkpoints is not None:  # before the trial is told: a child can only name a told trial its parent
            save_trial_weights(Path(self.checkpoints), number, space.encode(arch), model)
        if run:
            # Written while the next trial trains; the search flushes every worker's tracker before it ends.
            run.finish({"n_params": result.n_params, "train_seconds": result.seconds})
        return result


    def _inherit(self, space: Any, arch: Hashable, parent: int) -> tuple[Any, Any]:
        """``arch``'s network with trial ``parent``'s trained weights (``nas.estimation.inheritance``), and what was
        transferred; (None, None) when the parent's weights are not there: the child then trains from scratch."""
        from nas.estimation.inheritance import inherit

        path = Path(self.checkpoints) / f"trial-{parent}.pt"
        if not path.is_file():
            return None, None
        try:
            saved = read_checkpoint(path, weights_only=True)
            if not isinstance(saved, dict):
                raise TypeError(f"it holds a {type(saved).__name__}")
            if saved.get("trial", parent) != parent:  # a file copied or renamed (files before 0.1 record no trial)
                raise ValueError(f"it holds trial #{saved['trial']}'s weights")
            parent_arch = space.decode(saved["arch"])
            # Built like any network (init_model: seeded, under its lock): a bare build would draw from torch's
            # global generator while another worker's thread initialises its trial.
            parent_model = init_model(lambda: space.build(parent_arch, self.network), self.config.seed)
            parent_model.load_state_dict(saved["state_dict"])
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:  # damaged, truncated or foreign (a
            # CheckpointError is a ValueError): the user must see which file
            why = str(exc) if isinstance(exc, CheckpointError) else f"{type(exc).__name__}: {first_line(exc)[:200]}"
            raise UserError(f"{path}: not trial #{parent}'s checkpoint of this search ({why}); delete it, and "
                            f"its children train from scratch for search.epochs") from None
        model = init_model(lambda: space.build(arch, self.network), self.config.seed)
        # The morphism's random choices depend on the seed and the parent's and child's architectures only, not on
        # trial numbers: a resumed search (whose numbers have a gap where a trial was lost) inherits as before.
        rng = np.random.default_rng([self.config.seed, zlib.crc32(saved["arch"].encode()),
                                     zlib.crc32(space.encode(arch).encode())])
        return model, inherit(parent_arch, parent_model.eval(), arch, model, rng)


def drop_stale_weights(study: optuna.Study, folder: Path) -> None:
    """Remove the trial weights in ``folder`` when ``study`` has no trials yet: they are an earlier study's of the
    same name (its storage deleted, say), whose trial #3 need not be this one's, and a child would inherit them."""
    if folder.is_dir() and not study.get_trials(deepcopy=False):
        shutil.rmtree(folder)


def save_trial_weights(folder: Path, number: int, arch: str, model: Any) -> None:
    """A trial's trained weights, written whole or not at all (a kill mid-write leaves the old file or none)."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".trial-{number}.pt.tmp"
    torch.save({"trial": number, "arch": arch, "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}},
               tmp)
    os.replace(tmp, folder / f"trial-{number}.pt")


@dataclass(frozen=True)
class CostMeasure:
    """Measures an architecture's objectives known before training (``nas.estimation.cost``) on the network at
    ``network`` size; a plain value, so it runs wherever the trial runs.

    ``fast``: only what takes milliseconds (parameters, FLOPs; latency is timed for a fraction of a second), for
    strategies that screen many candidates (LEMONADE's children)."""

    space: str
    network: NetworkConfig
    input_shape: tuple[int, ...]
    names: tuple[str, ...]
    device: str
    batch_size: int = 1

    def __call__(self, arch: Hashable) -> dict[str, float]:
        from nas.estimation.cost import measure

        space = SPACES[self.space]
        model = init_model(lambda: space.build(arch, self.network), 0)
        return {k: float(v) for k, v in measure(model, self.names, self.input_shape, self.device,
                                                 batch_size=self.batch_size).items()}

    def cheap(self, directions: dict[str, str]) -> Callable[[Hashable], tuple[float | None, ...]]:
        """``cheap(arch)`` for multi-objective strategies: the fast objectives in study order, None for the rest."""
        fast = tuple(n for n in self.names if n != "latency_ms")
        screen = replace(self, names=fast)
        return functools.partial(_cheap_values, screen, tuple(directions)) if fast else None


def _cheap_values(measure: CostMeasure, order: tuple[str, ...], arch: Hashable) -> tuple[float | None, ...]:
    values = measure(arch)
    return tuple(values.get(name) for name in order)


def cost_measure(params: Params, data: PreparedData, device: str) -> CostMeasure | None:
    s = params.search
    names = tuple(n for n in s.directions if n != "val_accuracy")
    if not names:
        return None
    network = NetworkConfig(params.retrain.channels, params.retrain.cells_per_stage, data.in_channels,
                            data.num_classes)
    latency_device = device if s.latency_device == "auto" else s.latency_device
    return CostMeasure(s.space, network, tuple(data.manifest["image_shape"]), names, latency_device, s.latency_batch_size)


def _absolute(url: str) -> str:
    path = sqlite_path(url)
    return url if path is None else f"sqlite:///{Path(path).resolve()}"


def make_objective(params: Params, data: PreparedData, tracker: SearchTracker | None, device: str,
                   study_name: str = "") -> Objective:
    s = params.search
    network = NetworkConfig(s.channels, s.cells_per_stage, data.in_channels, data.num_classes)
    # Every trial trains with the same seed: candidates are compared under the same initialisation and batch order,
    # and a resumed search (whose trial numbers may have a gap) trains each architecture exactly as before.
    config = replace(train_config(s, device, params.data.dataset), epochs=s.trained_epochs)
    # Worker processes may start in another folder: relative SQLite paths are made absolute for them.
    tracking = (_absolute(tracker.uri), tracker.experiment_id, tracker.parent_run_id) if tracker else None
    # search.inherit: each trial's trained weights, which its children start from, beside the study's checkpoints.
    checkpoints = str((INHERIT_DIR / study_name).resolve()) if s.inherit else None
    return TrainingObjective(s.space, str(Path(params.data.out).resolve()), params.data, network, config, tracking,
                             os.getpid(), s.workers, checkpoints, s.child_epochs)


def recorded_warmup(storage: str, study_name: str, identity: dict[str, Any], space: Any,
                    report: Callable[[str], None]) -> list[Hashable]:
    """The zero-cost warm-up's architectures as a study of the same search recorded them when it started ([] when
    none did): a resumed search does not score the pool again."""
    attrs = recorded_attrs(storage, study_name)
    if WARMUP_ATTR not in attrs or attrs.get("identity") != identity:
        return []
    report(f"[search] zero-cost warm-up: the {len(attrs[WARMUP_ATTR])} architectures study {study_name!r} recorded "
           "when it started are the first proposals")
    return [space.decode(arch) for arch in attrs[WARMUP_ATTR]]


def zero_cost_warmup(params: Params, data: PreparedData, report: Callable[[str], None]) -> list[Hashable]:
    """``search.zero_cost_warmup``: the ``top_k`` of ``pool`` random architectures by a zero-cost proxy, each scored
    at initialisation (at the search's network size, the trials' seed) on one batch of the training split drawn from
    the seed: the same list every time the search starts, so a resumed search proposes as the uninterrupted one."""
    from nas.estimation.zero_cost import BATCH_SIZES, warm_start

    s, warm = params.search, params.search.zero_cost_warmup
    network = NetworkConfig(s.channels, s.cells_per_stage, data.in_channels, data.num_classes)
    size = min(BATCH_SIZES[warm.proxy] or 1, len(data.train.y))
    rows = torch.randperm(len(data.train.y), generator=torch.Generator().manual_seed(s.seed))[:size]
    x, y = normalize(data.train.x[rows], data.manifest), data.train.y[rows]
    start, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(1)  # as the trials: scores that do not depend on the thread count
    try:
        archs = warm_start(SPACES[s.space], network, x, y, warm.proxy, warm.pool, warm.top_k, s.seed)
    except ValueError as exc:  # a pool larger than the space
        raise UserError(f"search.zero_cost_warmup.pool: {exc}") from None
    finally:
        torch.set_num_threads(threads)
    report(f"[search] zero-cost warm-up: the best {warm.top_k} of {warm.pool} random architectures by {warm.proxy} "
           f"({time.perf_counter() - start:.1f} s) are the first proposals; best: {SPACES[s.space].encode(archs[0])}")
    return archs


def search(params: Params, report: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) the search; returns what ``models/search.json`` records."""
    if params.search.is_oneshot:  # a supernet instead of trials (nas.search.oneshot)
        from nas.search.oneshot import search_oneshot

        return search_oneshot(params, report)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = params.search
    data = load_prepared(params.data.out, params.data)
    space = SPACES[s.space]
    identity = study_identity(params, data)
    study_name = s.study_name or default_study_name(params, identity)
    device = pick_device()
    objectives = s.directions
    measure = cost_measure(params, data, device)
    options = {**s.search_defaults(), **s.strategy_options}
    warm: list[Hashable] = []
    if s.zero_cost_warmup:  # scored once: a resumed search reads what its study recorded
        warm = recorded_warmup(s.storage, study_name, identity, space, report) or zero_cost_warmup(params, data, report)
    try:
        sampler = make_sampler(s.strategy, space, s.seed, options, s.lag, directions=tuple(objectives.values()),
                               cheap=measure.cheap(objectives) if measure else None, constrained=bool(s.constraints),
                               warm=warm)
    except (TypeError, ValueError) as exc:  # a check of the sampler's own that validation does not repeat
        raise UserError(f"search.strategy_options: {s.strategy} refuses them: {first_line(exc)}") from None
    # An unreachable cluster fails before anything is written; another search running this study, before the
    # tracker or the study's trials are touched.
    tracker = None
    threads = torch.get_num_threads()
    try:
        with executor(s.executor, s.workers, s.dask_address, warm_up=__name__) as pool:
            study = open_study(s.storage, study_name, sampler, identity, objectives)
            uri = tracking_uri(params.tracking.uri)
            open_tracking(uri, params.tracking.experiment)  # an unusable MLflow store, before the study is touched
            claim(study, report)
            if s.inherit:
                drop_stale_weights(study, INHERIT_DIR / study_name)
            same_latency_hardware(study, params)
            if warm and WARMUP_ATTR not in study.user_attrs:  # a resumed search reads it (recorded_warmup)
                study.set_user_attr(WARMUP_ATTR, [space.encode(arch) for arch in warm])
            tracker = SearchTracker.start(
                uri, params.tracking.experiment, study_name,
                params={"space": s.space, "strategy": s.strategy,
                        "dataset": params.data.dataset, "seed": s.seed, "epochs": s.epochs, "channels": s.channels,
                        "cells_per_stage": s.cells_per_stage, "lag": s.lag, "objectives": ",".join(f"{k}:{v}" for k, v in objectives.items()),
                        "pruner": s.pruner, **({"min_epochs": s.min_epochs, "max_epochs": s.trained_epochs}
                                               if s.pruner != "none" else {}),
                        **{f"constraint.{k}": v for k, v in s.constraints.items()},
                        **({"inherit": True, "child_epochs": s.child_epochs or s.epochs} if s.inherit else {}),
                        **({f"zero_cost_warmup.{k}": v for k, v in s.zero_cost_warmup.model_dump().items()}
                           if s.zero_cost_warmup else {}),
                        **{f"strategy.{k}": v for k, v in options.items()}},
                tags={"data_dvc_md5": dvc_data_hash()},  # and mlflow.source.git.commit, on every run
                storage=s.storage, study=study,
                settings={"n_trials": s.n_trials, "workers": s.workers, "executor": s.executor},
            )
            where = f"{s.workers} worker(s), {s.executor}" + (f" at {s.dask_address}" if s.dask_address else "")
            report(f"[search] study {study_name!r} in {redact(s.storage)}; {s.strategy} on {s.space}, "
                   f"{s.n_trials} trials, {where}, device {device}; MLflow run {tracker.parent_run_id} at "
                   f"{redact(uri)}")
            settle(study, report)
            with refused_by_store(uri, "bringing the trials' runs up to date"):
                tracker.reconcile(study)  # the runs of trials a killed process left: as the study has them
            pruning = None if s.pruner == "none" else Pruning(
                s.pruner, s.min_epochs, s.trained_epochs, s.reduction_factor, tuple(objectives.items()), s.lag,
                s.curve_threshold)
            task = {"objectives": tuple(objectives.items()), "constraints": tuple(s.constraints.items()),
                    "measure": measure, "pruning": pruning}
            trials = run_search(study, space, make_objective(params, data, tracker, device, study_name), s.n_trials, report,
                                workers=s.workers, lag=s.lag, submit=pool.submit,
                                storage_url=_absolute(s.storage) if s.executor == "dask" else None, task=task,
                                timeout_s=s.timeout_s)
            with refused_by_store(uri, "writing the trials' runs"):
                pool.everywhere(flush_trackers)  # the trial runs that worker processes still write
    except BaseException:
        if tracker is not None:
            tracker.fail()  # after the pool: its threads have told their trials and written their runs
        raise
    finally:
        torch.set_num_threads(threads)  # trials train single-threaded; the stages after this one need not
    feasible = [t for t in trials if t.feasible]
    if not feasible:
        tracker.fail()
        if trials:
            raise UserError(f"search: none of the {len(trials)} completed trials meets search.constraints "
                            f"{s.constraints}; loosen them or search longer")
        raise UserError(f"search: no trial completed (search.timeout_s {s.timeout_s}); raise it or lower "
                        "search.epochs")
    best = pareto.best_of(trials, objectives)
    members = pareto.front_of(trials, objectives)
    summary = {
        "study_name": study_name,
        "storage": redact(s.storage),  # a DVC output: never a password (evaluate reads the URL from params.yaml)
        "space": s.space,
        "strategy": s.strategy,
        "n_trials": len(trials),  # completed; pruned ones below
        "pruned": len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.PRUNED,))),
        "best": {"number": best.number, "arch": best.arch, "val_accuracy": best.val_accuracy,
                 "values": best.values},
        "objectives": objectives,
        "front": [{"number": t.number, "arch": t.arch, "values": t.values} for t in members],
        "mlflow": {"tracking_uri": redact(uri), "experiment_id": tracker.experiment_id,
                   "ui": ui_link(redact(uri), tracker.experiment_id),
                   "parent_run_id": tracker.parent_run_id},
    }
    generations = getattr(getattr(sampler, "strategy", None), "generation", None)
    if generations is not None:  # generational strategies (NEAT): generations bred so far
        summary["generations"] = generations
    final = {"best_val_accuracy": best.val_accuracy, "completed_trials": len(trials)}
    if len(objectives) > 1:
        reference = pareto.reference_point(trials, objectives, s.constraints)
        summary["reference_point"] = reference
        history = pareto.trial_hypervolumes(trials, objectives, reference)
        summary["hypervolume"] = history[-1]
        with refused_by_store(uri, "finishing the search's run"):
            tracker.log_series("hypervolume", history, [t.number for t in trials])  # step: the trial's number
        final["front_size"] = len(members)  # the hypervolume is the series above: its last step is the final one
        report(f"[search] Pareto front: {len(members)} trial(s), hypervolume {history[-1]:.4g} (reference "
               f"{reference})")
    with refused_by_store(uri, "finishing the search's run"):
        tracker.finish(final)
    SEARCH_JSON.parent.mkdir(parents=True, exist_ok=True)
    SEARCH_JSON.write_text(json.dumps(summary, indent=2) + "\n")
    report(f"[search] best trial #{best.number}: val_acc={best.val_accuracy:.4f}  {best.arch}")
    report(f"[search] the trials in MLflow's UI: {summary['mlflow']['ui']}")
    counts = data.manifest["splits"]["val"]["class_counts"]
    chance = max(counts) / sum(counts)  # always predicting the largest class
    if best.val_accuracy <= chance:
        report(f"[search] warning: no trial beat chance accuracy ({chance:.4f}); the training settings "
               f"(search.lr {s.lr}, search.epochs {s.epochs}) may not let any candidate learn")
    return summary
