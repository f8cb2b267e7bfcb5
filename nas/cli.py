"""The ``nas`` command: run a stage without Prefect, check params.yaml, or compare strategies on a tabular benchmark.

    nas validate [--params params.yaml]
    nas prepare|search|retrain|evaluate [--params params.yaml]
    nas bench --strategies random,re,local,tpe --runs 300 --budget-s 12000 --out bench/ [--table PATH]
              [--seed K] [--jobs J] [--no-tracking]
    nas predict --model models:/nas-digits@champion --input image.png more.npy [--tracking-uri URI]

User mistakes print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nas.config import Params, load_params
from nas.errors import UserError

STAGES = ("prepare", "search", "retrain", "evaluate")


def _stage(name: str) -> Callable[[Params], Any]:
    if name == "prepare":
        from nas.data import prepare

        return lambda p: prepare(p.data)
    if name == "search":
        from nas.search.stage import search

        return search
    if name == "retrain":
        from nas.training.retrain import retrain

        return retrain
    from nas.evaluation import evaluate

    return evaluate


def bench(args: argparse.Namespace) -> None:
    from nas.tabular import NB201_CIFAR10
    from nas.tabular.bench import compare, resolve_strategies
    from nas.tracking import tracking_uri

    uri = None if args.no_tracking else tracking_uri(args.tracking_uri)
    compare(args.table or NB201_CIFAR10, resolve_strategies(args.strategies), args.runs, args.budget_s, args.out,
            args.seed, args.jobs, uri, args.experiment)


def predict(args: argparse.Namespace) -> None:
    import mlflow

    from nas.serving import predict_files
    from nas.tracking import tracking_uri

    mlflow.set_tracking_uri(tracking_uri(args.tracking_uri))
    for name, label, probability in predict_files(args.model, args.input):
        print(f"{name}\t{label}\t{probability:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas", description="Neural architecture search pipeline.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("validate", *STAGES):
        sub = commands.add_parser(name, help="check params.yaml" if name == "validate" else f"run the {name} stage")
        sub.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    b = commands.add_parser("bench", help="compare strategies under the NAS-Bench-201 protocol on a tabular benchmark")
    b.add_argument("--table", help="benchmark table in the NAS-Bench-201 CSV format (default: the shipped CIFAR-10 one)")
    b.add_argument("--strategies", default="random,re,local", help="comma-separated strategy names")
    b.add_argument("--runs", type=int, default=300, help="independent runs per strategy (default 300)")
    b.add_argument("--budget-s", type=float, default=12_000.0, help="simulated seconds per run (default 12000)")
    b.add_argument("--out", default="reports/bench", help="output folder (default reports/bench)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    b.add_argument("--experiment", default="nas-bench", help="MLflow experiment (default nas-bench)")
    b.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store; MLFLOW_TRACKING_URI wins")
    b.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p = commands.add_parser("predict", help="class and probability of images from a registered model")
    p.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/nas-digits@champion")
    p.add_argument("--input", required=True, nargs="+", help="image files and/or .npy arrays of 0..255 pixels")
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store; MLFLOW_TRACKING_URI wins")
    args = parser.parse_args(argv)
    try:
        if args.command in ("bench", "predict"):
            (bench if args.command == "bench" else predict)(args)
            return 0
        params = load_params(args.params)
        if args.command == "validate":
            print(f"{args.params}: ok")
            return 0
        _stage(args.command)(params)
    except UserError as exc:
        print(f"nas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
