"""Learning-curve extrapolation (Domhan et al. 2015, ``nas.estimation.curves``) on real curves: how well the first
epochs of a trial predict its final accuracy, and how many epochs the curve pruner saves a random search.

The curves are those of ``--archs`` random NB201 architectures (a numpy Generator seeded with ``--seed``, no repeats)
trained on mnist5k as the search trains its trials (params.yaml's search settings: 8 channels, one cell per stage,
SGD at 0.05 with cosine decay, batch 64, seed 0, one CPU thread) for ``--epochs`` epochs: the validation accuracy after
each epoch, as ``nas.estimation.estimate`` returns it. They are written to ``--curves`` (JSON) one architecture at a
time, so a rerun, or a run after an interruption, trains only what is missing.

1. Prediction: the ensemble's mean from the first 3 and the first 6 epochs against the true final accuracy (the last
   epoch of the same schedule): mean absolute error and Spearman's rho over the architectures, beside the baseline
   "the last accuracy observed is the final one"; also the bias and how often the truth lies within mean +- 2 std.
2. Pruning: a random search's proposals do not depend on the results, so a random search with the curve pruner
   evaluates exactly the recorded curves in the recorded order, and stops each where the pruner would: replaying them
   through the pruner's own rule (``nas.search.pruners.curve_stop``), trial k judged against the trials 0 .. k - lag
   as the pruner judges it (``--lag``, params.yaml's ``search.lag``; 1: every trial before it), is that search. It counts the epochs trained with and without the pruner (``speedup``: their ratio) and
   the best final accuracy each finds (``acc_delta``: pruned minus plain, in percentage points). Since the order of
   the proposals decides when the incumbent appears, the same is repeated over ``--orders`` random orders of the
   architectures (the searches of other seeds): mean speed-up and how often the pruned search still finds the best.
3. Cost: the median seconds of one fit (every prefix the replay extrapolates) against the median seconds of one
   epoch of the default digits search (params.yaml's search settings on digits, ``--digits-archs`` random
   architectures trained for its 4 epochs, one thread).

Timings are taken on a 2-core machine shared with other work: they move with its load.

Measured (40 architectures, 12 epochs, seed 0; final accuracies 0.9707 .. 0.9867; 2 cores shared with other work;
the curves recorded again on 2026-11-25, after training changes since the first recording):

- Prediction: from 3 epochs MAE 0.081 (last observed 0.109), rho 0.09 (0.14), bias -0.081, truth within 2 std 48 %;
  from 6 epochs MAE 0.019 (0.017), rho 0.42 (0.52), bias -0.017, within 2 std 95 %. The cosine schedule's last epochs
  add what the curve models do not foresee, and the final accuracies lie within 2 pp of each other, so neither the
  extrapolation nor the last value ranks them well.
- Pruning (threshold 0.05), with params.yaml's ``lag: 4``: from epoch 3 (``min_epochs: 1``) 235 epochs instead of 480,
  2.04x, but the best architecture (0.9867) is pruned: -0.13 pp, and it survives in 18 % of 200 orders (2.17x on
  average); from epoch 4 307 epochs, 1.56x at equal final accuracy (the best kept in all 200 orders, 1.59x on
  average); from epoch 6 1.12x; from epoch 8 1.01x. With ``--lag 1`` (each trial judged against all before it): from
  epoch 3 2.21x, -0.13 pp, the best kept in 2 % of orders; from epoch 4 1.65x at equal accuracy; from 6 1.12x. The
  first recording of the curves (final accuracies up to 0.9893, lag 1) needed epoch 6 to keep the best (1.20x).
- Cost: one fit 23 ms median (107 ms at most, 334 fits), one digits epoch 397 ms median: a fit is 6 % of an epoch.

``RESULT speedup`` and ``acc_delta`` are at ``--min-epochs`` (default 1, params.yaml's); ``speedup_equal`` at the
earliest start that keeps the best architecture (``equal_from_epoch``).

Usage: python benchmarks/curve_extrapolation.py [--curves /tmp/nas_curves_mnist5k.json] [--archs 40] [--epochs 12]
(about 35 minutes of one core to train the curves on a quiet machine, 79 on this loaded one; then 2 minutes)
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from nas.config import Params
from nas.data import PreparedData, load_prepared, prepare
from nas.estimation import curves, estimate
from nas.search.pruners import curve_stop
from nas.spaces import SPACES, NetworkConfig
from nas.training import train_config

SPACE = SPACES["nb201"]


def _prepared(dataset: str, epochs: int, seed: int, tmp: str) -> tuple[Params, PreparedData]:
    params = Params.model_validate({"data": {"dataset": dataset, "out": f"{tmp}/{dataset}", "root": f"{tmp}/raw"},
                                    "search": {"epochs": epochs, "seed": seed}})
    prepare(params.data)
    return params, load_prepared(params.data.out, params.data)


def train_curves(params: Params, data: PreparedData, archs: Sequence[str]):
    """Yield ``(arch, learning curve, seconds)`` of each architecture trained as the search trains a trial."""
    s = params.search
    network = NetworkConfig(s.channels, s.cells_per_stage, data.manifest["image_shape"][0], data.num_classes)
    config = replace(train_config(s, "cpu", params.data.dataset), epochs=s.epochs)
    for arch in archs:
        result = estimate(SPACE.decode(arch), SPACE, data, network, config)
        yield arch, list(result.learning_curve), result.seconds


def collect(path: Path, n_archs: int, epochs: int, dataset: str, seed: int) -> list[list[float]]:
    """The learning curves of ``n_archs`` random architectures, read from ``path`` and completed there."""
    settings = {"dataset": dataset, "epochs": epochs, "seed": seed}
    cached = json.loads(path.read_text()) if path.exists() else {"settings": settings, "curves": []}
    if cached["settings"] != settings:
        raise SystemExit(f"{path} holds curves of {cached['settings']}, not {settings}: pass another --curves path")
    rows = cached["curves"]
    rng = np.random.default_rng(seed)
    archs: list[str] = []
    while len(archs) < n_archs:  # the same proposals every run: the cache is a prefix of them
        arch = SPACE.encode(SPACE.sample(rng))
        if arch not in archs:
            archs.append(arch)
    if len(rows) < n_archs:
        print(f"[collect] training {n_archs - len(rows)} architectures for {epochs} epochs on {dataset}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            params, data = _prepared(dataset, epochs, seed, tmp)
            for arch, curve, seconds in train_curves(params, data, archs[len(rows):]):
                rows.append({"arch": arch, "curve": curve, "seconds": seconds})
                print(f"[collect] {len(rows)}/{n_archs} {arch} final {curve[-1]:.4f} ({seconds:.0f} s)", flush=True)
                path.write_text(json.dumps({"settings": settings, "curves": rows}, indent=1) + "\n")
    assert [r["arch"] for r in rows[:n_archs]] == archs, f"{path} holds other architectures: delete it"
    return [r["curve"] for r in rows[:n_archs]]


def digits_epoch_seconds(n_archs: int, seed: int) -> float:
    """The median seconds of one epoch of the default digits search (params.yaml's search settings)."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        params, data = _prepared("digits", Params.model_validate({}).search.epochs, 0, tmp)
        archs = [SPACE.encode(SPACE.sample(rng)) for _ in range(n_archs)]
        return statistics.median(s / len(c) for _, c, s in train_curves(params, data, archs))


def prediction(curves_: list[list[float]], first: int, epochs: int) -> dict[str, float]:
    truth = np.array([c[epochs - 1] for c in curves_])
    fits = [curves.fit(c[:first], epochs) for c in curves_]
    mean = np.array([f.mean for f in fits])
    std = np.array([f.std for f in fits])
    last = np.array([c[first - 1] for c in curves_])
    return {"mae": float(np.abs(mean - truth).mean()), "rho": float(spearmanr(mean, truth)[0]),
            "bias": float(np.mean(mean - truth)), "covered": float(np.mean(np.abs(mean - truth) <= 2 * std)),
            "mae_last": float(np.abs(last - truth).mean()), "rho_last": float(spearmanr(last, truth)[0])}


def replay(curves_: list[list[float]], epochs: int, min_epochs: int, threshold: float, predict,
           lag: int = 1) -> dict[str, Any]:
    """A random search with the curve pruner over ``curves_`` in this order, trial k judged against the trials
    0 .. k - lag (``search.lag``, as ``nas.search.pruners`` does): epochs trained, best final accuracy."""
    finals: list[float | None] = []  # per trial: its final accuracy, None when pruned
    trained, pruned = 0, []
    for k, curve in enumerate(curves_):
        seen = [f for f in finals[:max(0, k - lag + 1)] if f is not None]
        for step in range(1, epochs):
            if curve_stop(curve[:step], seen, epochs, min_epochs, threshold, predict) is not None:
                trained += step
                pruned.append(step)
                finals.append(None)
                break
        else:
            trained += epochs
            finals.append(curve[epochs - 1])
    return {"epochs": trained, "best": max(f for f in finals if f is not None), "pruned": pruned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--curves", type=Path, default=Path(tempfile.gettempdir()) / "nas_curves_mnist5k.json",
                        help="JSON cache of the recorded curves (trained when missing)")
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-epochs", type=int, default=1, help="the pruner's min_epochs (params.yaml's default)")
    parser.add_argument("--threshold", type=float, default=0.05, help="search.curve_threshold")
    parser.add_argument("--lag", type=int, default=Params().search.lag,
                        help="search.lag: trial k is judged against trials 0..k-lag (params.yaml's default)")
    parser.add_argument("--orders", type=int, default=200, help="random orders of the architectures to replay")
    parser.add_argument("--digits-archs", type=int, default=5)
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    torch.set_num_threads(1)  # as a search trial trains; the machine is shared
    curves_ = collect(args.curves, args.archs, args.epochs, args.dataset, args.seed)
    print(f"\n=== {len(curves_)} architectures, {args.epochs} epochs on {args.dataset}: final accuracy "
          f"{min(c[-1] for c in curves_):.4f} .. {max(c[-1] for c in curves_):.4f} ===")

    predicted = {first: prediction(curves_, first, args.epochs) for first in (3, 6)}
    print(f"{'from':<10} {'MAE':>7} {'rho':>6} {'bias':>8} {'in 2 std':>8} | last observed: {'MAE':>7} {'rho':>6}")
    for first, p in predicted.items():
        print(f"{first} epochs {p['mae']:>8.4f} {p['rho']:>6.3f} {p['bias']:>+8.4f} {p['covered']:>8.0%} | "
              f"{'':>15}{p['mae_last']:>7.4f} {p['rho_last']:>6.3f}")

    seconds: list[float] = []

    @functools.cache
    def predict(curve: tuple[float, ...], horizon: int) -> curves.Extrapolation:
        start = time.perf_counter()
        result = curves.fit(curve, horizon)
        seconds.append(time.perf_counter() - start)
        return result

    def cached(curve: Sequence[float], horizon: int) -> curves.Extrapolation:
        return predict(tuple(curve), horizon)  # a prefix is fitted once, whatever the order it is met in

    plain_best = max(c[-1] for c in curves_)
    plain_epochs = len(curves_) * args.epochs
    rng = np.random.default_rng(args.seed)
    orders = [list(rng.permutation(len(curves_))) for _ in range(args.orders)]
    print(f"\npruned random search, {plain_epochs} epochs and best final {plain_best:.4f} without the pruner; "
          f"threshold {args.threshold:g}, lag {args.lag}; speed-up = epochs without / with; over {args.orders} random orders too")
    print(f"{'min_epochs':>10} {'epochs':>6} {'speed-up':>8} {'pruned at':<32} {'best':>6} {'delta pp':>8} | "
          f"{'orders: speed-up':>16} {'best kept':>9} {'mean loss pp':>12}")
    results = {}
    for min_epochs in sorted({args.min_epochs, 3, 4, 6, 8} - {e for e in (8,) if e >= args.epochs}):
        run = replay(curves_, args.epochs, min_epochs, args.threshold, cached, args.lag)
        again = [replay([curves_[i] for i in order], args.epochs, min_epochs, args.threshold, cached, args.lag)
                 for order in orders]
        results[min_epochs] = run | {"kept": float(np.mean([o["best"] == plain_best for o in again]))}
        print(f"{min_epochs:>10} {run['epochs']:>6} {plain_epochs / run['epochs']:>7.2f}x "
              f"{str(sorted(run['pruned']))[:32]:<32} {run['best']:>6.4f} {100 * (run['best'] - plain_best):>+8.2f} | "
              f"{np.mean([plain_epochs / o['epochs'] for o in again]):>15.2f}x {results[min_epochs]['kept']:>9.0%} "
              f"{100 * np.mean([plain_best - o['best'] for o in again]):>12.2f}")
    run = results[args.min_epochs]
    speedup, delta = plain_epochs / run["epochs"], 100 * (run["best"] - plain_best)
    # Equal final accuracy: the earliest start at which the pruned search keeps the best architecture in 95 % of the
    # orders (and in the recorded one).
    equal = min((e for e, r in results.items() if r["kept"] >= 0.95 and r["best"] == plain_best), default=None)
    speedup_equal = plain_epochs / results[equal]["epochs"] if equal is not None else float("nan")

    fit_s = statistics.median(seconds)
    print(f"\none fit: median {1000 * fit_s:.0f} ms, max {1000 * max(seconds):.0f} ms over {len(seconds)} fits",
          flush=True)
    epoch_s = digits_epoch_seconds(args.digits_archs, args.seed)
    print(f"one epoch of the default digits search: median {1000 * epoch_s:.0f} ms over {args.digits_archs} "
          "architectures")
    print(f"RESULT mae_3={predicted[3]['mae']:.4f} mae_6={predicted[6]['mae']:.4f} rho_3={predicted[3]['rho']:.3f} "
          f"rho_6={predicted[6]['rho']:.3f} speedup={speedup:.2f} acc_delta={delta:+.2f} fit_s={fit_s:.3f} "
          f"digits_epoch_s={epoch_s:.3f} mae_3_last={predicted[3]['mae_last']:.4f} "
          f"mae_6_last={predicted[6]['mae_last']:.4f} rho_3_last={predicted[3]['rho_last']:.3f} "
          f"rho_6_last={predicted[6]['rho_last']:.3f} min_epochs={args.min_epochs} best_kept={run['kept']:.2f} "
          f"speedup_equal={speedup_equal:.2f} equal_from_epoch={equal} lag={args.lag}")


if __name__ == "__main__":
    main()
