"""Prefect flow of ``nas bench``: strategies compared under the NAS-Bench-201 protocol on a tabular benchmark.

    python -m flows.bench random,re,local [runs]
"""

import sys

from prefect import flow

from nas.errors import UserError
from nas.tabular import NB201_CIFAR10
from nas.tabular.bench import compare, resolve_strategies
from nas.tracking import tracking_uri


@flow(name="bench", log_prints=True)
def bench_flow(strategies: str = "random,re,local", runs: int = 300, budget_s: float = 12_000.0,
               out: str = "reports/bench", table: str = str(NB201_CIFAR10), seed: int = 0, jobs: int = 1,
               uri: str = "sqlite:///mlflow.db") -> dict:
    return compare(table, resolve_strategies(strategies), runs, budget_s, out, seed, jobs, tracking_uri(uri))


if __name__ == "__main__":
    try:
        resolve_strategies(sys.argv[1] if len(sys.argv) > 1 else "random,re,local")
        bench_flow(*sys.argv[1:2], *(int(a) for a in sys.argv[2:3]))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
