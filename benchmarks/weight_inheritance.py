"""Weight inheritance against training from scratch (issue 13): regularized evolution on the macro space, mnist5k.

Two searches with the same seed and the same number of trials (``--population`` random architectures, then
``--children`` children), each the real search stage (``nas.search.stage.search``: Optuna SQLite study, MLflow
SQLite store, one worker, ``lag: 1``):

* **scratch**: every trial trains ``--epochs`` epochs from its initialisation;
* **inherited**: the random population trains ``--epochs`` epochs too, and each child starts from its parent trial's
  trained weights (``search.inherit``: network morphisms, ``nas.estimation.inheritance``) and trains
  ``--epochs / 4`` epochs (``search.child_epochs``).

Printed for each: the best validation accuracy found, the test accuracy of that architecture after the same retrain
(``nas.training.retrain``, one thread, the same settings; an architecture both found is retrained once), the total
training seconds of its trials (the sum of their MLflow ``train_seconds``: training only, no start-up or logging)
and the search's wall time. The goal: inherited within 0.3 pp of scratch's test accuracy at <= 1/2 its training
seconds. A child of the inherited search reaches the same epochs of training as a scratch one only counting its
ancestors' epochs, so its validation accuracy is not comparable to a scratch trial's: the best of each search is
compared after the same retrain.

Usage: python benchmarks/weight_inheritance.py [--epochs 4] [--population 10] [--children 30] [--seed 0]
Ends with: RESULT acc_delta=... time_ratio=... best_val_scratch=... best_val_inherited=... ...
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
from multi_fidelity import retrained_test_accuracy, search_in

from nas.config import Params
from nas.data import prepare


def run(name: str, raw: dict[str, Any], folder: Path, tested: dict[str, float]) -> dict[str, Any]:
    """Search then retrain in ``folder``; ``tested``: test accuracy of each architecture retrained so far."""
    params, found, search_s = search_in(folder, name, raw)
    study = optuna.load_study(study_name=found["study_name"], storage=params.search.storage)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    client = mlflow.MlflowClient(params.tracking.uri)
    experiment = client.get_experiment_by_name(params.tracking.experiment)
    runs = client.search_runs([experiment.experiment_id], "metrics.train_seconds > 0", max_results=10_000)
    train_s = sum(r.data.metrics["train_seconds"] for r in runs)
    children = sum("parent_trial" in r.data.params for r in runs)
    arch = found["best"]["arch"]
    return {"trials": len(completed), "children_inherited": children, "epochs": sum(t.last_step for t in completed),
            "train_s": train_s, "search_s": search_s, "best_val": found["best"]["val_accuracy"], "arch": arch,
            "test_acc": retrained_test_accuracy(params, arch, tested)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs of a trial from scratch (children: 1/4)")
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--sample-size", type=int, default=3)
    parser.add_argument("--children", type=int, default=30)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dataset", default="mnist5k")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    here = Path.cwd()
    child_epochs = max(1, args.epochs // 4)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        search = {"space": "macro", "strategy": "regularized_evolution", "seed": args.seed, "epochs": args.epochs,
                  "strategy_options": {"population_size": args.population, "sample_size": args.sample_size},
                  "n_trials": args.population + args.children, "channels": args.channels, "workers": 1, "lag": 1}
        raw = {"data": {"dataset": args.dataset, "out": str(base / "prepared"), "root": str(base / "raw")},
               "retrain": {"epochs": args.retrain_epochs, "warmup_epochs": min(2, args.retrain_epochs - 1),
                           "channels": 16, "seed": args.seed}}
        prepare(Params.model_validate(raw).data)
        tested: dict[str, float] = {}
        for name, extra in (("scratch", {}), ("inherited", {"inherit": True, "child_epochs": child_epochs})):
            folder = base / name
            results[name] = run(name, {**raw, "search": {**search, **extra, "storage": f"sqlite:///{folder}/optuna.db"},
                                       "tracking": {"uri": f"sqlite:///{base}/mlflow.db", "experiment": name,
                                                    "model_name": f"nas-{name}"}}, folder, tested)
        os.chdir(here)
    print(f"\n=== regularized evolution on macro, {args.dataset}: {args.population} random + {args.children} children, "
          f"{args.epochs} epochs from scratch, {child_epochs} inherited ===")
    print(f"{'search':<10} {'trials':>6} {'inherited':>9} {'epochs':>6} {'train s':>8} {'search s':>8} {'best val':>8} "
          f"{'test acc':>8}  best architecture")
    for name, r in results.items():
        print(f"{name:<10} {r['trials']:>6} {r['children_inherited']:>9} {r['epochs']:>6} {r['train_s']:>8.0f} "
              f"{r['search_s']:>8.0f} {r['best_val']:>8.4f} {r['test_acc']:>8.4f}  {r['arch']}")
    scratch, inherited = results["scratch"], results["inherited"]
    print(f"RESULT acc_delta={100 * (inherited['test_acc'] - scratch['test_acc']):+.2f} "
          f"time_ratio={inherited['train_s'] / scratch['train_s']:.3f} "
          f"best_val_scratch={scratch['best_val']:.4f} best_val_inherited={inherited['best_val']:.4f} "
          f"test_acc_scratch={scratch['test_acc']:.4f} test_acc_inherited={inherited['test_acc']:.4f} "
          f"train_s_scratch={scratch['train_s']:.0f} train_s_inherited={inherited['train_s']:.0f} "
          f"epochs_ratio={inherited['epochs'] / scratch['epochs']:.3f}")


if __name__ == "__main__":
    main()
