"""Early stopping in a multi-objective search: the same proposals with and without successive halving over Pareto
ranks (``nas.search.pruners``; Optuna refuses ``Trial.report`` in a multi-objective study), their Pareto fronts, the
hypervolume of each, and the epochs each trained.

Both searches are the real search stage (``nas.search.stage.search``: Optuna SQLite storage, MLflow SQLite store) on
objectives ``[val_accuracy, params]`` with ``optuna_random``, whose proposals do not depend on results: both studies
must hold the same architectures trial by trial (checked and printed). The plain search trains every trial for
``--epochs``; the pruned one stops a trial at the rung epochs (``--min-epochs`` times powers of
``--reduction-factor``) when trials that reached the same epoch dominate it and it is not in their top
1/reduction_factor by Pareto rank. Each front is that of the completed trials (``models/search.json``); both
hypervolumes are measured from ONE reference point: accuracy 0 and 1.1 x the most parameters among all trials of both
searches. Epochs trained: per trial, its last reported epoch. ``front_recall`` counts the unpruned front's
architectures that are on the pruned front; ``coverage`` its members that the pruned front weakly dominates (an
architecture with the same accuracy and parameters counts as found).

Usage: python benchmarks/multi_objective_pruning.py [--trials 40] [--epochs 9] [--dataset digits]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
from multi_fidelity import search_in

from nas.config import Params
from nas.data import prepare
from nas.search import pareto
from nas.search.pruners import COSTS_ATTR

OBJECTIVES = {"val_accuracy": "maximize", "params": "minimize"}


def run(name: str, raw: dict[str, Any], folder: Path) -> dict[str, Any]:
    """One search in ``folder`` (its ``models/search.json`` lands there); its trials and front."""
    params, found, _ = search_in(folder, name, raw)
    study = optuna.load_study(study_name=found["study_name"], storage=params.search.storage)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    return {"proposals": [t.user_attrs["arch"] for t in counted],
            "params": [t.user_attrs[COSTS_ATTR]["params"] for t in counted],
            "epochs": sum(t.last_step or 0 for t in counted),
            "completed": sum(t.state == TrialState.COMPLETE for t in trials),
            "pruned": sum(t.state == TrialState.PRUNED for t in trials),
            "front": found["front"]}


def front_hypervolume(front: list[dict[str, Any]], reference: dict[str, float]) -> float:
    cost = pareto.costs([[m["values"][k] for k in OBJECTIVES] for m in front], list(OBJECTIVES.values()))
    point = pareto.costs([[reference[k] for k in OBJECTIVES]], list(OBJECTIVES.values()))[0]
    return pareto.hypervolume(cost, point)


def coverage(front: list[dict[str, Any]], by: list[dict[str, Any]]) -> float:
    """Fraction of ``front``'s members that some member of ``by`` weakly dominates (equal or better in every
    objective; Zitzler & Thiele 1999's set coverage C(by, front)): unlike the recall of architectures, a different
    architecture with the same values counts as found."""
    cost = pareto.costs([[m["values"][k] for k in OBJECTIVES] for m in front], list(OBJECTIVES.values()))
    other = pareto.costs([[m["values"][k] for k in OBJECTIVES] for m in by], list(OBJECTIVES.values()))
    return sum(bool(((other <= row).all(axis=1)).any()) for row in cost) / len(front)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=9, help="epochs of a trial that is not stopped")
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="digits")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    here = Path.cwd()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.chdir(base)
        search_keys = {"strategy": "optuna_random", "seed": args.seed, "n_trials": args.trials, "epochs": args.epochs,
                       "objectives": list(OBJECTIVES), "workers": 1, "lag": 1,
                       "storage": f"sqlite:///{base / 'optuna.db'}"}
        raw = {"data": {"dataset": args.dataset, "out": str(base / "prepared"), "root": str(base / "raw")},
               "search": search_keys, "tracking": {"uri": f"sqlite:///{base / 'mlflow.db'}"}}
        prepare(Params.model_validate(raw).data)
        halving = {"pruner": "successive_halving", "min_epochs": args.min_epochs, "max_epochs": args.epochs,
                   "reduction_factor": args.reduction_factor}
        results["unpruned"] = run("unpruned", raw, base / "unpruned")
        results["pruned"] = run("pruned", raw | {"search": search_keys | halving}, base / "pruned")
        os.chdir(here)
    plain, pruned = results["unpruned"], results["pruned"]
    same = plain["proposals"] == pruned["proposals"]
    reference = {"val_accuracy": 0.0, "params": 1.1 * max(plain["params"] + pruned["params"])}
    hv = {name: front_hypervolume(r["front"], reference) for name, r in results.items()}
    plain_front = {m["arch"] for m in plain["front"]}
    pruned_front = {m["arch"] for m in pruned["front"]}
    recall = len(plain_front & pruned_front) / len(plain_front)
    covered = coverage(plain["front"], pruned["front"])
    print(f"\n=== {args.trials} trials of optuna_random (seed {args.seed}) on {args.dataset}, objectives "
          f"{json.dumps(OBJECTIVES)}, {args.epochs} epochs per full trial ===")
    print(f"same proposals trial by trial: {same}")
    print(f"reference point: {reference}")
    for name, r in results.items():
        print(f"{name:<9} completed {r['completed']:>3}  pruned {r['pruned']:>3}  epochs {r['epochs']:>4}  "
              f"front {len(r['front']):>2}  hypervolume {hv[name]:.6g}")
        for m in sorted(r["front"], key=lambda m: m["values"]["params"]):
            mark = "" if m["arch"] in (pruned_front if name == "unpruned" else plain_front) else "  (not on the other)"
            print(f"    #{m['number']:<3} val_acc={m['values']['val_accuracy']:.4f}  params={m['values']['params']:>8.0f}  "
                  f"{m['arch']}{mark}")
    print(f"RESULT hv_ratio={hv['pruned'] / hv['unpruned']:.4f} "
          f"epochs_ratio={pruned['epochs'] / plain['epochs']:.3f} front_recall={recall:.3f} "
          f"same_proposals={str(same).lower()} coverage={covered:.3f} hv_pruned={hv['pruned']:.6g} hv_unpruned={hv['unpruned']:.6g} "
          f"epochs_pruned={pruned['epochs']} epochs_unpruned={plain['epochs']} front_pruned={len(pruned_front)} "
          f"front_unpruned={len(plain_front)} reference_params={reference['params']:.0f}")


if __name__ == "__main__":
    main()
