"""Strategies under the NAS-Bench-201 protocol on the shipped CIFAR-10 table (12,000 simulated seconds per run).

Prints mean ± std of test_acc_200 over N seeded runs per strategy (the paper's random search: 93.70 ± 0.36; best
architecture in the space: 94.37) and the wall time of random search + regularized evolution on one core.
Usage: python benchmarks/nb201_protocol.py [--runs 300] [--budget-s 12000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from nas.spaces import SPACES  # noqa: E402
from nas.strategies import STRATEGIES  # noqa: E402
from nas.tabular import TabularBenchmark, run_protocol  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--budget-s", type=float, default=12_000.0)
    args = parser.parse_args()
    bench = TabularBenchmark.from_csv()
    space = SPACES["nb201"]
    print(f"table {bench.path}: {len(bench.entries)} architectures, best test_acc_200 {bench.best()[1]:.2f}")
    timed = 0.0
    for name in STRATEGIES:
        start = time.process_time()
        runs = [run_protocol(STRATEGIES[name](space, seed=seed), bench, args.budget_s) for seed in range(args.runs)]
        seconds = time.process_time() - start
        if name in ("random", "regularized_evolution"):
            timed += seconds
        acc = np.array([r.test_acc_200 for r in runs])
        queries = np.mean([r.queries for r in runs])
        print(f"{name:<22} {acc.mean():.2f} ± {acc.std():.2f}  ({args.runs} runs, {queries:.0f} queries/run, {seconds:.2f} s CPU)")
    print(f"random + regularized_evolution, {args.runs} runs each: {timed:.2f} s CPU on one core (target <= 5 s)")


if __name__ == "__main__":
    main()
