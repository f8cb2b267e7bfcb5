"""Strategies under the NAS-Bench-201 protocol on the shipped CIFAR-10 table (12,000 simulated seconds per run).

Prints mean ± std of test_acc_200 over N seeded runs per strategy (the paper: random search 93.70 ± 0.36, REINFORCE
93.85 ± 0.37; the best architecture in the space: 94.37), then times random search + regularized evolution,
N runs each, on one core with tracking off (target <= 5 s).

With ``--fidelity multi``: the same single-fidelity strategies, then BOHB (Falkner et al. 2018) under the
multi-fidelity protocol (it may also buy ``val_acc_200`` at 200/12 times the 12-epoch cost; budgets 12 and 200
epochs, eta = 200/12), on the same seeds; ends with
``RESULT runs=N bohb_test_acc=... best_single_fidelity=<name> best_single_fidelity_test_acc=... delta=... delta_se=...``
(delta = BOHB minus the best single-fidelity mean, delta_se its standard error).
Usage: python benchmarks/nb201_protocol.py [--runs 300] [--budget-s 12000] [--jobs 2] [--strategies a,b,...]
       [--fidelity single|multi]
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from nas.spaces import SPACES
from nas.strategies import STRATEGIES
from nas.tabular import TabularBenchmark, run_protocol
from nas.tabular.bench import resolve_strategies, run_bench, summarize
from nas.tabular.benchmark import NB201_CIFAR10

ALL = "random,local_search,regularized_evolution,neat,reinforce,bananas,gp_thompson,mcts,tpe"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--budget-s", type=float, default=12_000.0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--strategies", default=ALL)
    parser.add_argument("--fidelity", choices=("single", "multi"), default="single")
    args = parser.parse_args()
    bench = TabularBenchmark.from_csv()
    print(f"table {bench.path}: {len(bench.entries)} architectures, best test_acc_200 {bench.best()[1]:.2f}")
    if args.fidelity == "multi":
        multi_fidelity(args)
        return

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


def multi_fidelity(args: argparse.Namespace) -> None:
    single, _ = run_bench(NB201_CIFAR10, resolve_strategies(args.strategies), args.runs, args.budget_s,
                          jobs=args.jobs, report=print)
    multi, _ = run_bench(NB201_CIFAR10, ["bohb"], args.runs, args.budget_s, jobs=args.jobs, report=print,
                         fidelity="multi")
    print(f"{'strategy':<22} {'fidelity':<8} test_acc_200     queries/run (12 + 200 epochs)")
    for fidelity, results in (("single", single), ("multi", multi)):
        queries = results.groupby("strategy", sort=False)[[c for c in ("queries", "queries_200") if c in results]]
        for row, (_, q) in zip(summarize(results).itertuples(), queries.mean().iterrows(), strict=True):
            print(f"{row.strategy:<22} {fidelity:<8} {row.mean_test_acc_200:.2f} ± {row.std_test_acc_200:.2f}   "
                  f"{q['queries']:.1f} + {q.get('queries_200', 0.0):.1f}")
    summary = summarize(single).set_index("strategy")
    best = summary["mean_test_acc_200"].idxmax()
    bohb = summarize(multi).iloc[0]
    delta = bohb.mean_test_acc_200 - summary.loc[best, "mean_test_acc_200"]
    se = math.sqrt((bohb.std_test_acc_200 ** 2 + summary.loc[best, "std_test_acc_200"] ** 2) / args.runs)
    print(f"RESULT runs={args.runs} bohb_test_acc={bohb.mean_test_acc_200:.2f} best_single_fidelity={best} "
          f"best_single_fidelity_test_acc={summary.loc[best, 'mean_test_acc_200']:.2f} delta={delta:+.2f} "
          f"delta_se={se:.2f}")


if __name__ == "__main__":
    main()
