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

One pair of searches per seed of ``--seeds`` (five by default), because one pair cannot resolve 0.3 pp: its test
split is 750 images (one image is 0.13 pp; the binomial standard error of a 98 % accuracy there is 0.5 pp), and two
searches of one seed part ways at their first different child. The RESULT holds the mean delta over the seeds with
its standard error, its worst seed, and the ratio of the seeds' summed training seconds (and the worst seed's);
each seed's row is printed above it. ``--jobs 2`` runs two seeds at once: training seconds are wall seconds, so
they grow with the machine's load (both searches of a seed share it alike).

Usage: python benchmarks/weight_inheritance.py [--epochs 4] [--population 10] [--children 30] [--seeds 0,1,2,3,4]
       [--jobs 1]
Ends with: RESULT acc_delta=... time_ratio=... acc_delta_se=... acc_delta_min=... time_ratio_max=... ...
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import optuna
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).parent))
from multi_fidelity import retrained_test_accuracy, search_in

from nas.config import Params
from nas.data import load_prepared, prepare


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
            "best_trial": found["best"]["number"],
            "test_acc": retrained_test_accuracy(params, arch, tested)}


def compare(args: argparse.Namespace, seed: int) -> dict[str, dict[str, Any]]:
    """The scratch and the inherited search of ``seed`` and the retrain of each one's best."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    here = Path.cwd()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        search = {"space": "macro", "strategy": "regularized_evolution", "seed": seed, "epochs": args.epochs,
                  "strategy_options": {"population_size": args.population, "sample_size": args.sample_size},
                  "n_trials": args.population + args.children, "channels": args.channels, "workers": 1, "lag": 1}
        raw = {"data": {"dataset": args.dataset, "out": str(base / "prepared"), "root": str(base / "raw")},
               "retrain": {"epochs": args.retrain_epochs, "warmup_epochs": min(2, args.retrain_epochs - 1),
                           "channels": 16, "seed": seed}}
        prepare(Params.model_validate(raw).data)
        tested: dict[str, float] = {}
        for name, extra in (("scratch", {}), ("inherited", {"inherit": True, "child_epochs": child_epochs(args)})):
            folder = base / name
            results[name] = run(name, {**raw, "search": {**search, **extra, "storage": f"sqlite:///{folder}/optuna.db"},
                                       "tracking": {"uri": f"sqlite:///{base}/mlflow.db", "experiment": name,
                                                    "model_name": f"nas-{name}"}}, folder, tested)
        results["scratch"]["test_images"] = len(load_prepared(Params.model_validate(raw).data.out).test.y)
        os.chdir(here)
    return results


def child_epochs(args: argparse.Namespace) -> int:
    return max(1, args.epochs // 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs of a trial from scratch (children: 1/4)")
    parser.add_argument("--population", type=int, default=10)
    parser.add_argument("--sample-size", type=int, default=3)
    parser.add_argument("--children", type=int, default=30)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated: one pair of searches per seed")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (each search uses one core)")
    parser.add_argument("--dataset", default="mnist5k")
    args = parser.parse_args()
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: comma-separated integers, got {args.seeds!r}")
    if args.jobs < 1 or len(set(seeds)) != len(seeds):
        parser.error("--jobs must be >= 1 and --seeds distinct")
    if args.jobs == 1:
        per_seed = [compare(args, seed) for seed in seeds]
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            per_seed = list(pool.map(compare, [args] * len(seeds), seeds))
    print(f"\n=== regularized evolution on macro, {args.dataset}: {args.population} random + {args.children} "
          f"children, {args.epochs} epochs from scratch, {child_epochs(args)} inherited; seeds {args.seeds}, "
          f"{args.jobs} at once ===")
    print(f"{'seed':>4} {'search':<10} {'trials':>6} {'inherited':>9} {'epochs':>6} {'train s':>8} {'search s':>8} "
          f"{'best val':>8} {'test acc':>8} {'best #':>6}  best architecture")
    for seed, results in zip(seeds, per_seed):
        for name, r in results.items():
            print(f"{seed:>4} {name:<10} {r['trials']:>6} {r['children_inherited']:>9} {r['epochs']:>6} "
                  f"{r['train_s']:>8.0f} {r['search_s']:>8.0f} {r['best_val']:>8.4f} {r['test_acc']:>8.4f} "
                  f"{r['best_trial']:>6}  {r['arch']}")
    pairs = [(r["scratch"], r["inherited"]) for r in per_seed]
    deltas = np.array([100 * (i["test_acc"] - s["test_acc"]) for s, i in pairs])
    ratios = np.array([i["train_s"] / s["train_s"] for s, i in pairs])
    for seed, delta, ratio, (s, i) in zip(seeds, deltas, ratios, pairs):
        found = [f"#{r['best_trial']}" + (" (random population)" if r["best_trial"] < args.population else "")
                 for r in (s, i)]
        same = "the same architecture" if s["arch"] == i["arch"] else "different architectures"
        same += ", " + " / ".join(found)
        print(f"seed {seed}: test acc {100 * s['test_acc']:.2f} -> {100 * i['test_acc']:.2f} % ({delta:+.2f} pp), "
              f"training seconds {s['train_s']:.0f} / {i['train_s']:.0f} = {ratio:.3f}; {same}")
    n_test = pairs[0][0]["test_images"]
    scratch_acc = np.mean([s["test_acc"] for s, _ in pairs])
    # One test image is 100/n_test pp; a retrained accuracy near scratch_acc is uncertain by its binomial error.
    binomial = 100 * np.sqrt(scratch_acc * (1 - scratch_acc) / n_test)
    se = deltas.std(ddof=1) / np.sqrt(len(deltas)) if len(deltas) > 1 else float("nan")
    time_ratio = sum(i["train_s"] for _, i in pairs) / sum(s["train_s"] for s, _ in pairs)
    print(f"mean over {len(seeds)} seeds: {deltas.mean():+.2f} ± {se:.2f} pp (standard error) at {time_ratio:.3f}x "
          f"the training seconds (their sums); one seed's test accuracy is {n_test} images, 1 image = "
          f"{100 / n_test:.2f} pp, binomial standard error {binomial:.2f} pp")
    means = " ".join(f"{k}_{name}={np.mean([r[name][k] for r in per_seed]):.4f}"
                     for k in ("best_val", "test_acc") for name in ("scratch", "inherited"))
    epochs_ratio = sum(i["epochs"] for _, i in pairs) / sum(s["epochs"] for s, _ in pairs)
    print(f"RESULT acc_delta={deltas.mean():+.2f} time_ratio={time_ratio:.3f} acc_delta_se={se:.2f} "
          f"acc_delta_min={deltas.min():+.2f} time_ratio_max={ratios.max():.3f} seeds={len(seeds)} {means} "
          f"train_s_scratch={sum(s['train_s'] for s, _ in pairs):.0f} "
          f"train_s_inherited={sum(i['train_s'] for _, i in pairs):.0f} epochs_ratio={epochs_ratio:.3f}")

if __name__ == "__main__":
    main()
