"""A multi-objective, hardware-aware search stage on real training: costs measured on the deployed network before
training, a hard bound skips what breaks it, the front and its hypervolume reach search.json, MLflow and the
report, and retrain.select picks a front member."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from nas.config import Params
from nas.errors import UserError
from nas.estimation.cost import count_params
from nas.reports import top_trials, write_search_reports
from nas.search import TrialRecord, pareto, records
from nas.search.stage import SEARCH_JSON, CostMeasure, search
from nas.spaces import SPACES, NetworkConfig
from nas.training.retrain import select


def test_a_constrained_two_objective_search_with_pruning(prepared_digits, mlflow_uri, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = Params.model_validate({
        "data": {"out": str(prepared_digits)},
        "search": {"strategy": "mo_re", "strategy_options": {"population_size": 4, "sample_size": 2},
                   "objectives": ["val_accuracy", {"params": "minimize"}], "constraints": {"params": 31000.0},
                   "pruner": "successive_halving", "min_epochs": 1, "max_epochs": 3, "n_trials": 10, "lag": 1,
                   "channels": 4, "batch_size": 256, "storage": storage},
        "retrain": {"channels": 8, "cells_per_stage": 1, "select": "knee"},
    })
    lines: list[str] = []
    summary = search(params, lines.append)
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert study.metric_names == ["val_accuracy", "params"]

    # params is measured on the network the retrain stage builds (channels 8, one cell per stage), not the search's.
    space = SPACES["nb201"]
    for trial in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        deployed = space.build(space.decode(trial.user_attrs["arch"]), NetworkConfig(8, 1, 1, 10))
        assert trial.user_attrs["costs"]["params"] == count_params(deployed)
        assert ("infeasible" in trial.user_attrs) == (count_params(deployed) > 31000)
        if "infeasible" in trial.user_attrs:
            assert not trial.intermediate_values and f"params {count_params(deployed):.4g} breaks" in " ".join(lines)

    trials = records(study)
    front = pareto.front_of(trials, summary["objectives"])
    assert [m["number"] for m in summary["front"]] == [t.number for t in front] and front
    assert all(t.feasible and t.values["params"] <= 31000 for t in front)
    assert summary["reference_point"] == {"val_accuracy": 0.0, "params": 31000.0}  # the bound is the reference

    client = MlflowClient(mlflow_uri)
    history = client.get_metric_history(summary["mlflow"]["parent_run_id"], "hypervolume")
    assert len(history) == len(trials) and history[-1].value == pytest.approx(summary["hypervolume"])
    assert [h.step for h in history] == [t.number for t in trials]  # steps are trial numbers, pruned ones skipped
    assert summary["best"]["number"] in {t.number for t in front}
    assert [h.value for h in history] == sorted(h.value for h in history)  # a front only grows

    chosen = select(json.loads(SEARCH_JSON.read_text()), "knee")
    assert chosen["number"] in {t.number for t in front}
    files = write_search_reports(study, trials, "mo", tmp_path / "reports", selected=chosen["number"],
                                 reference=summary["reference_point"])
    assert {f.name for f in files} >= {"pareto_front.png", "hypervolume.png"}
    # Trials outside the constraint were never trained: listed as infeasible, but not ranked or plotted as 0 accuracy
    untrained = {t.number for t in trials if not t.feasible}
    assert untrained, "the search should have met the constraint"
    listed = pd.read_csv(tmp_path / "reports" / "trials.csv")
    assert set(listed.loc[~listed["feasible"], "number"]) == untrained
    assert untrained.isdisjoint(pd.read_csv(tmp_path / "reports" / "search_progress.csv")["trial"])
    assert untrained.isdisjoint(row["trial"] for row in top_trials(trials))


def test_ehvi_screens_candidates_by_the_parameters_the_retrained_network_will_have(prepared_digits, mlflow_uri,
                                                                                    tmp_path, monkeypatch):
    """EHVI's GP models accuracy alone; the search hands it the parameters of each candidate before training."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = Params.model_validate({
        "data": {"out": str(prepared_digits)},
        "search": {"strategy": "ehvi", "strategy_options": {"initial": 3, "batch": 2, "candidates": 50},
                   "objectives": ["val_accuracy", "params"], "epochs": 1, "n_trials": 7, "lag": 1,
                   "channels": 4, "batch_size": 256, "storage": storage},
        "retrain": {"channels": 8, "cells_per_stage": 1},
    })
    seen: list = []
    real_cheap = CostMeasure.cheap

    def spying_cheap(self, directions):
        screen = real_cheap(self, directions)
        return lambda arch: seen.append(arch) or screen(arch)

    monkeypatch.setattr(CostMeasure, "cheap", spying_cheap)
    summary = search(params, lambda line: None)
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 7 and summary["front"]
    # Every proposal after the random ones was screened among more candidates than were trained.
    space = SPACES["nb201"]
    proposed = {space.decode(t.user_attrs["arch"]) for t in trials[3:]}
    assert proposed <= set(seen) and len(seen) > len(proposed)


def _found(front, objectives=None):
    objectives = objectives or {"val_accuracy": "maximize", "latency_ms": "minimize"}
    members = [{"number": i, "arch": f"a{i}", "values": dict(zip(objectives, v))} for i, v in enumerate(front)]
    best = max(members, key=lambda m: m["values"]["val_accuracy"])
    return {"best": {**best, "val_accuracy": best["values"]["val_accuracy"]}, "front": members,
            "objectives": objectives}


def test_retrain_select_best_knee_and_under_a_bound():
    found = _found([(0.90, 1.0), (0.95, 1.5), (0.96, 4.0), (0.97, 9.0)])
    assert select(found, "best")["number"] == 3
    assert select(found, "knee")["number"] == 1  # most of the accuracy for little latency
    assert select(found, "under:latency_ms=5")["number"] == 2
    assert select(found, "under:latency_ms=1.2")["val_accuracy"] == 0.90
    with pytest.raises(UserError, match=r"retrain.select: no member of the Pareto front has latency_ms within 0.5 "
                                        r"\(the closest has 1\)"):
        select(found, "under:latency_ms=0.5")
    with pytest.raises(UserError, match="retrain.select: flops is not an objective"):
        select(found, "under:flops=5")
    single = {"best": {"number": 4, "arch": "x", "val_accuracy": 0.9}}  # a single-objective search.json
    assert select(single, "knee") == select(single, "best") == single["best"]


def test_a_two_member_front_has_no_knee_and_retrains_the_most_accurate():
    """Each member of a two-point front is an extreme: knee must not pick by trial order (a 10 % model ran first)."""
    for front in ([(0.10, 0.020), (0.97, 0.023)], [(0.97, 0.023), (0.10, 0.020)]):
        found = _found(front, {"val_accuracy": "maximize", "params_m": "minimize"})
        assert select(found, "knee")["val_accuracy"] == 0.97
        assert front[pareto.knee(pareto.costs(front, ["maximize", "minimize"]))] == (0.97, 0.023)


def test_the_best_of_a_multi_objective_search_is_on_the_front():
    """Two trials equally accurate: the best is the one with fewer parameters, whichever ran first."""
    objectives = {"val_accuracy": "maximize", "params_m": "minimize"}

    def trial(number, acc, params_m, feasible=True):
        return TrialRecord(number, f"a{number}", acc, 1.0, {"val_accuracy": acc, "params_m": params_m}, feasible)

    trials = [trial(0, 0.5, 0.01), trial(1, 0.97, 0.031), trial(2, 0.97, 0.023), trial(3, 0.99, 0.001, False)]
    assert pareto.best_of(trials, objectives).number == 2
    assert pareto.best_of(trials[:2], {"val_accuracy": "maximize"}).number == 1


def test_the_knee_of_a_three_objective_front_is_below_the_plane_through_its_extremes():
    """Three objectives: the plane through the extremes is not the plane through the unit points (sum = 1), below
    which no member of this front lies; the knee is the member farthest below the former, not an extreme."""
    front = [(0.95, 3.0, 300e3), (0.60, 1.0, 60e3), (0.63, 1.2, 50e3), (0.85, 1.8, 170e3)]
    directions = ["maximize", "minimize", "minimize"]
    assert pareto.knee(pareto.costs(front, directions)) == 3
    found = _found(front, {"val_accuracy": "maximize", "latency_ms": "minimize", "params": "minimize"})
    assert select(found, "knee")["number"] == 3
    # One member extreme in two objectives: no plane through the extremes, the unit plane's knee.
    assert pareto.knee(pareto.costs([(0.9, 1.0, 3.0), (0.5, 3.0, 1.0), (0.8, 1.5, 1.6)], directions)) == 2


def test_a_latency_search_records_its_hardware_and_is_refused_elsewhere(prepared_digits, tmp_path):
    """Latencies measured on other hardware are not comparable: the study records where it timed them."""
    from nas.estimation.cost import device_name
    from nas.search.stage import same_latency_hardware

    def params(objectives, **search):
        strategy = "mo_regularized_evolution" if len(objectives) > 1 else "regularized_evolution"
        return Params.model_validate({"data": {"out": str(prepared_digits)},
                                      "search": {"strategy": strategy, "objectives": objectives, **search}})

    storage = f"sqlite:///{tmp_path / 'o.db'}"
    latency = params(["val_accuracy", {"latency_ms": "minimize"}])
    study = optuna.create_study(study_name="s", storage=storage, directions=["maximize", "minimize"])
    same_latency_hardware(study, latency)
    assert study.user_attrs["latency_hardware"] == device_name("cpu")
    same_latency_hardware(study, latency)  # resumed here: fine
    study.set_user_attr("latency_hardware", "cuda: NVIDIA H100")  # as if made on a GPU machine
    with pytest.raises(UserError, match=r"^search.latency_device: study 's' timed latency_ms on 'cuda: NVIDIA H100', "
                                        r"and this is 'cpu: .*': milliseconds of two machines do not belong on one "
                                        r"front; resume it there, or set search.study_name to start a new study here$"):
        same_latency_hardware(study, latency)
    other = optuna.create_study(study_name="p", storage=storage, directions=["maximize", "minimize"])
    same_latency_hardware(other, params(["val_accuracy", {"params": "minimize"}], constraints={"params": 1e5}))
    assert "latency_hardware" not in other.user_attrs
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="latency device 'cuda': no CUDA device here; allowed: cpu"):
            same_latency_hardware(other, params(["val_accuracy", {"latency_ms": "minimize"}], latency_device="cuda"))
