"""Multi-fidelity on real training: the same strategy and seed on mnist5k with and without Hyperband, over the same
wall-clock budget; how many architectures each evaluates, and the test accuracy of each one's best architecture
after the same retraining.

Each search is the real search stage (``nas.search.stage.search``: Optuna SQLite storage, MLflow SQLite store) with
``search.timeout_s`` as the budget (``n_trials`` never binds; the trial running when time is up finishes, so a search
may overrun by up to one trial: its own wall time is printed), one worker and ``lag: 1``. The plain search trains
every trial for ``--epochs``; the Hyperband one (Li et al. 2017, Optuna's ``HyperbandPruner`` over
``--min-epochs .. --epochs`` with ``--reduction-factor``) stops the trials that fall behind at each rung, so a
completed trial of either search has trained the same epochs and their best val accuracies compare. The best completed
trial of each is then retrained by the retrain stage (``nas.training.retrain.retrain``, same settings for both) and
scored on the test split as the evaluate stage does (``predict`` on the normalised test images); the retrain runs on
one thread, as the trials do, so the same architecture gets the same test accuracy in both, and one that both searches
found is retrained once.

Regularized evolution runs with population 10 and tournament 3 (``--options`` to change) so that the plain search,
which evaluates about 14 architectures in the default budget on a shared 2-core machine (71 to 213 s per 27-epoch
trial, 130 s on average), evolves for some of them instead of only sampling.

What to expect: Optuna's Hyperband over ``n`` brackets gives the one starting at ``min * eta^b`` epochs trials in the
ratio ``ceil(n * eta^s / (s + 1))``, ``s = n - 1 - b``, and each rung promotes 1/eta of its bracket's trials in the long
run. Over 1..27 epochs with eta 3 it has 4 brackets, weighed 27:12:6:4 (starting at 1, 3, 9 and 27 epochs), so a trial
trains (27 * (1 + 2/3 + 6/9 + 18/27) + 12 * (3 + 6/3 + 18/9) + 6 * (9 + 18/3) + 4 * 27) / 49 = (81 + 84 + 90 + 108) / 49
= 7.4 epochs on average, and Hyperband evaluates at most 27 / 7.4 = 3.6x the architectures of the plain search in the
same epochs (fewer early on: the first trials at each rung are promoted; and each slot's bracket is drawn by a hash,
so a short search's mix varies around these weights). Over 1..9 epochs (``--epochs 9 --budget-s 600``) it has 3
brackets, weighed 9:5:3 (starting at 1, 3 and 9 epochs), so a trial trains (9 * (1 + 2/3 + 6/9) + 5 * (3 + 6/3) + 3 *
9) / 17 = 4.3 epochs, and 9 / 4.3 = 2.1x is the ceiling there (measured 1.87x and 2.23x in 600 s, both at +0.00 pp):
Hyperband's saving grows with max / min epochs (Li et al. 2017 use 27 or 81). One bracket (``--pruner
successive_halving``) saves more: 9 / 2.33 = 3.9x over 1..9 epochs. ``speedup`` counts architectures in the same wall
time, which moves with the load other processes put on the machine during each search (the plain 1..9 search's same
trials took 108 to 135 epochs in 600 s over three runs); ``speedup_per_epoch`` counts them per epoch trained and does
not.

Measured over 1..27 epochs (1800 s per search, seed 0, 2 cores shared with another agent's work): ``RESULT
speedup=3.50 acc_delta=+0.00``, 3.47x per epoch trained. The plain search evaluated 14 architectures (378 epochs,
1824 s), the Hyperband one 49 (9 completed, 40 pruned: 18 at epoch 1, 13 at 3, 9 at 9; 381 epochs, 1808 s), 7.8
epochs each against 7.4 in the long run (early promotions). Both found the same architecture (val 0.9920, its second
trial), 98.40 % test after retraining.

Usage: python benchmarks/multi_fidelity.py [--budget-s 1800] [--epochs 27] [--retrain-epochs 10] [--pruner hyperband]
(about 65 minutes; ``--budget-s 600 --epochs 9`` for the 1..9 setting, about 25)
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from nas.config import Params
from nas.data import load_prepared, normalize, prepare

RE_OPTIONS = {"population_size": 10, "sample_size": 3}


def test_accuracy(params: Params) -> float:
    """Accuracy of ``models/best.pt`` (the retrained network) on the prepared test split."""
    from nas.training import predict
    from nas.training.retrain import BEST_PT, load_checkpoint

    model, ckpt = load_checkpoint(BEST_PT)
    data = load_prepared(params.data.out, params.data)
    with torch.inference_mode():
        pred = predict(model, normalize(data.test.x, ckpt["manifest"]))
    return (pred == data.test.y).float().mean().item()


def search_in(folder: Path, name: str, raw: dict[str, Any]) -> tuple[Params, dict[str, Any], float]:
    """The search stage in a new ``folder`` (its ``models/`` and stores land there): the settings, what it returned
    (``models/search.json``) and its wall seconds. Shared by the benchmarks that run the real search stage."""
    from nas.search.stage import search

    folder.mkdir()
    os.chdir(folder)
    params = Params.model_validate(raw)
    budget = f", budget {params.search.timeout_s:g} s" if params.search.timeout_s else ""
    print(f"\n=== {name}: {params.search.strategy} on {params.search.space}, pruner {params.search.pruner}{budget} ===",
          flush=True)
    start = time.perf_counter()
    found = search(params, lambda line: print(line, flush=True))
    return params, found, time.perf_counter() - start


def retrained_test_accuracy(params: Params, arch: str, tested: dict[str, float]) -> float:
    """Retrain the search's best ``arch`` by the retrain stage and score it on the test split. ``tested``: the test
    accuracy of each architecture retrained so far; one found again is not retrained (the retrain is deterministic:
    same architecture, settings, seed and thread count, same weights)."""
    from nas.training.retrain import retrain

    if arch in tested:
        print(f"[benchmark] {arch} was retrained already: its test accuracy is reused", flush=True)
    else:
        # One thread, as the trials train: on a shared machine two threads contend, and every retrain runs alike.
        torch.set_num_threads(1)
        retrain(params, report=lambda line: print(line, flush=True))
        tested[arch] = test_accuracy(params)
    return tested[arch]


def run(name: str, raw: dict[str, Any], folder: Path, tested: dict[str, float]) -> dict[str, Any]:
    """Search then retrain in ``folder``; what the benchmark prints."""
    params, found, search_s = search_in(folder, name, raw)
    study = optuna.load_study(study_name=found["study_name"], storage=params.search.storage)
    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    arch = found["best"]["arch"]
    start = time.perf_counter()
    test_acc = retrained_test_accuracy(params, arch, tested)
    return {"archs": len(completed) + len(pruned), "completed": len(completed), "pruned": len(pruned),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "epochs": sum(t.last_step or 0 for t in completed + pruned), "best_val": found["best"]["val_accuracy"],
            "arch": arch, "test_acc": test_acc, "search_s": search_s, "retrain_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="regularized_evolution")
    parser.add_argument("--options", type=json.loads, default=None,
                        help="strategy_options as JSON (default: population 10, tournament 3 for "
                             "regularized_evolution, else {})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=1800.0, help="wall-clock budget of each search")
    parser.add_argument("--epochs", type=int, default=27, help="epochs of a plain trial; Hyperband's max_epochs")
    parser.add_argument("--pruner", default="hyperband", choices=["hyperband", "successive_halving", "median"],
                        help="the pruned search's pruner (RESULT keys are named after it)")
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--reduction-factor", type=int, default=3)
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--retrain-channels", type=int, default=16)
    parser.add_argument("--retrain-cells", type=int, default=2)
    parser.add_argument("--dataset", default="mnist5k")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    options = args.options if args.options is not None else (
        RE_OPTIONS if args.strategy in ("regularized_evolution", "re") else {})
    here = Path.cwd()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.chdir(base)
        search_keys = {"strategy": args.strategy, "strategy_options": options, "seed": args.seed,
                       "n_trials": 1_000_000, "epochs": args.epochs, "timeout_s": args.budget_s, "workers": 1,
                       "lag": 1, "storage": f"sqlite:///{base / 'optuna.db'}"}
        raw = {"data": {"dataset": args.dataset, "out": str(base / "prepared"), "root": str(base / "raw")},
               "search": search_keys,
               "retrain": {"epochs": args.retrain_epochs, "channels": args.retrain_channels,
                           "cells_per_stage": args.retrain_cells, "seed": args.seed},
               "tracking": {"uri": f"sqlite:///{base / 'mlflow.db'}", "model_name": f"nas-{args.dataset}"}}
        prepare(Params.model_validate(raw).data)
        pruning = {"pruner": args.pruner, "min_epochs": args.min_epochs, "max_epochs": args.epochs,
                   "reduction_factor": args.reduction_factor}
        tested: dict[str, float] = {}
        results["plain"] = run("plain", raw, base / "plain", tested)
        results[args.pruner] = run(args.pruner, raw | {"search": search_keys | pruning}, base / args.pruner, tested)
        os.chdir(here)
    print(f"\n=== {args.strategy} (seed {args.seed}) on {args.dataset}, {args.budget_s:g} s per search, "
          f"{args.epochs} epochs per full trial, {os.cpu_count()} cores ===")
    print(f"{'search':<18} {'archs':>5} {'compl.':>6} {'pruned':>6} {'epochs':>6} {'ep/arch':>7} {'search s':>8} "
          f"{'best val':>8} {'test acc':>8}  best architecture")
    for name, r in results.items():
        print(f"{name:<18} {r['archs']:>5} {r['completed']:>6} {r['pruned']:>6} {r['epochs']:>6} "
              f"{r['epochs'] / r['archs']:>7.2f} {r['search_s']:>8.0f} {r['best_val']:>8.4f} {r['test_acc']:>8.4f}  "
              f"{r['arch']}")
    plain, pruned, key = results["plain"], results[args.pruner], args.pruner
    speedup = pruned["archs"] / plain["archs"]
    # Architectures per epoch trained: what the pruner changes, free of how loaded the machine was during each search.
    per_epoch = (pruned["archs"] / pruned["epochs"]) / (plain["archs"] / plain["epochs"])
    delta = 100 * (pruned["test_acc"] - plain["test_acc"])
    print(f"RESULT speedup={speedup:.2f} acc_delta={delta:+.2f} archs_{key}={pruned['archs']} "
          f"archs_plain={plain['archs']} test_acc_{key}={pruned['test_acc']:.4f} test_acc_plain={plain['test_acc']:.4f} "
          f"epochs_{key}={pruned['epochs']} epochs_plain={plain['epochs']} best_val_{key}={pruned['best_val']:.4f} "
          f"best_val_plain={plain['best_val']:.4f} speedup_per_epoch={per_epoch:.2f} same_arch={str(pruned['arch'] == plain['arch']).lower()}")


if __name__ == "__main__":
    main()
