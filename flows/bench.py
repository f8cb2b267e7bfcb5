"""Prefect flow of ``nas bench``: strategies compared under the NAS-Bench-201 protocol on a tabular benchmark.

    python -m flows.bench random,re,local [runs]
"""

import sys

from prefect import flow, get_run_logger

from flows.common import api_server, progress_to_stdout
from nas.errors import UserError
from nas.tabular import NB201_CIFAR10, TabularBenchmark
from nas.tabular.bench import check_arguments, compare, resolve_strategies
from nas.tracking import tracking_uri

BUDGET_S, OUT, TABLE, URI = 12_000.0, "reports/bench", str(NB201_CIFAR10), "sqlite:///mlflow.db"


@flow(name="bench", log_prints=True)
def bench_flow(strategies: str = "random,re,local", runs: int = 300, budget_s: float = BUDGET_S, out: str = OUT,
               table: str = TABLE, seed: int = 0, jobs: int = 1, uri: str = URI) -> dict:
    return compare(table, resolve_strategies(strategies), runs, budget_s, out, seed, jobs, tracking_uri(uri),
                   report=get_run_logger().info)


def main(argv: list[str]) -> None:
    """Check everything ``bench_flow`` would check before the flow starts: inside it, the engine logs a traceback."""
    if len(argv) > 2:
        raise UserError(f"unexpected argument {argv[2]!r}; usage: python -m flows.bench [strategies] [runs]")
    strategies = argv[0] if argv else "random,re,local"
    try:
        runs = int(argv[1]) if len(argv) > 1 else 300
    except ValueError:
        raise UserError(f"runs {argv[1]!r}: must be a whole number >= 1") from None
    resolve_strategies(strategies)
    check_arguments(runs, BUDGET_S, OUT, tracking_uri=tracking_uri(URI))
    TabularBenchmark.from_csv(TABLE)
    progress_to_stdout()
    with api_server():
        bench_flow(strategies, runs)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
