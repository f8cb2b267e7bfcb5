"""Parallel workers: the digits search (16 trials, 2 epochs, tracking on) with 1, 2 and 4 workers of a local Dask
cluster, its wall time per worker count, and whether the three studies hold the same architectures trial by trial.

Each search is the real search stage (``nas.search.stage.search``: Optuna SQLite storage, MLflow SQLite store),
started on a fresh study, on a running ``LocalCluster`` of that many single-threaded workers (``dask_address``), after
one warm-up search on it: the workers' one-off start (importing torch and MLflow, about 4 s on 2 cores) is printed,
not counted, as for a cluster that serves many searches. ``lag`` is 4 for all three, so the same seed must give the
same trials. Usage: python benchmarks/parallel_search.py [--trials 16] [--epochs 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import optuna
from distributed import LocalCluster

from nas.config import Params
from nas.data import prepare


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from nas.search.stage import search  # after the environment is set

    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.chdir(base)
        raw = {"data": {"out": str(base / "prepared")},
               "search": {"n_trials": args.trials, "epochs": args.epochs, "strategy": "regularized_evolution",
                          "strategy_options": {"population_size": 8, "sample_size": 3}, "lag": max(counts),
                          "executor": "dask", "storage": f"sqlite:///{base / 'optuna.db'}"},
               "tracking": {"uri": f"sqlite:///{base / 'mlflow.db'}"}}
        prepare(Params.model_validate(raw).data)
        walls, trials, best, starts = {}, {}, {}, {}
        for n in counts:
            start = time.perf_counter()
            with LocalCluster(n_workers=n, threads_per_worker=1, dashboard_address=None,
                              silence_logs=logging.ERROR) as cluster:
                starts[n] = time.perf_counter() - start
                on = {"workers": n, "dask_address": cluster.scheduler_address}
                # A first search on the cluster: the workers import torch and MLflow, open the stores and read the
                # data once (what a cluster that serves many searches has done already).
                search(Params.model_validate(raw | {"search": raw["search"] | on | {
                    "n_trials": n, "study_name": f"warm-up-{n}"}}), lambda line: None)
                params = Params.model_validate(raw | {"search": raw["search"] | on | {"study_name": f"w{n}"}})
                start = time.perf_counter()
                found = search(params, lambda line: None)
                walls[n] = time.perf_counter() - start
            study = optuna.load_study(study_name=f"w{n}", storage=raw["search"]["storage"])
            trials[n] = [t.user_attrs["arch"] for t in study.get_trials()]
            best[n] = found["best"]["arch"]
            print(f"{n} worker(s): {walls[n]:.1f} s (cluster start {starts[n]:.1f} s, not counted), best {found['best']['val_accuracy']:.4f} {best[n]}", flush=True)
    same = all(trials[n] == trials[counts[0]] for n in counts) and len(set(best.values())) == 1
    speedups = {n: walls[counts[0]] / walls[n] for n in counts[1:]}
    print(f"\n=== {args.trials} trials x {args.epochs} epochs on digits, Dask LocalCluster, {os.cpu_count()} cores ===")
    for n in counts:
        print(f"{n} worker(s): {walls[n]:.1f} s" + (f"  speed-up {speedups[n]:.2f}x" if n in speedups else ""))
    print(f"same architectures trial by trial and the same best: {same}")
    figures = " ".join(f"wall_{n}={walls[n]:.1f}" for n in counts)
    figures += "".join(f" speedup_{n}={s:.2f}" for n, s in speedups.items())
    print(f"RESULT {figures} same_trials={str(same).lower()}")


if __name__ == "__main__":
    main()
