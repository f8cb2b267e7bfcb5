"""Strategies under the NAS-Bench-201 protocol on the shipped CIFAR-10 table (12,000 simulated seconds per run).

Prints mean ± std of test_acc_200 over N seeded runs per strategy (the paper: random search 93.70 ± 0.36, REINFORCE
93.85 ± 0.37; the best architecture in the space: 94.37), then times random search + regularized evolution,
N runs each, on one core with tracking off (target <= 5 s).
Usage: python benchmarks/nb201_protocol.py [--runs 300] [--budget-s 12000] [--jobs 2] [--strategies a,b,...]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from nas.spaces import SPACES  # noqa: E402
from nas.strategies import STRATEGIES  # noqa: E402
from nas.tabular import TabularBenchmark, run_protocol  # noqa: E402
from nas.tabular.bench import resolve_strategies, run_bench, summarize  # noqa: E402
from nas.tabular.benchmark import NB201_CIFAR10  # noqa: E402

ALL = "random,local_search,regularized_evolution,neat,reinforce,bananas,gp_thompson,mcts,tpe"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--budget-s", type=float, default=12_000.0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--strategies", default=ALL)
    args = parser.parse_args()
    bench = TabularBenchmark.from_csv()
    print(f"table {bench.path}: {len(bench.entries)} architectures, best test_acc_200 {bench.best()[1]:.2f}")

    results, _ = run_bench(NB201_CIFAR10, resolve_strategies(args.strategies), args.runs, args.budget_s,
                           jobs=args.jobs, report=lambda line: None)
    queries = results.groupby("strategy", sort=False)["queries"].mean()
    for row in summarize(results).itertuples():
        print(f"{row.strategy:<22} {row.mean_test_acc_200:.2f} ± {row.std_test_acc_200:.2f}  "
              f"({row.runs} runs, {queries[row.strategy]:.0f} queries/run)")

    start = time.process_time()
    for name in ("random", "regularized_evolution"):
        for seed in range(args.runs):
            run_protocol(STRATEGIES[name](SPACES["nb201"], seed=seed), bench, args.budget_s)
    print(f"random + regularized_evolution, {args.runs} runs each: {time.process_time() - start:.2f} s CPU on one "
          "core, tracking off (target <= 5 s)")


if __name__ == "__main__":
    main()
