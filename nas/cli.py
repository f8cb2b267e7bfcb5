"""The ``nas`` command: run a stage without Prefect, check params.yaml, or compare strategies on a tabular benchmark.

    nas validate [--params params.yaml]
    nas prepare|search|retrain|evaluate [--params params.yaml]
    nas bench --strategies random,re,local,tpe --runs 300 --budget-s 12000 --out bench/ [--table PATH]
              [--seed K] [--jobs J] [--fidelity single|multi] [--no-tracking]
    nas predict --model models:/nas-digits@champion --input image.png more.npy [--tracking-uri URI]
    nas schedule --cron "0 2 * * *" | --interval SECONDS [--params params.yaml] [--name NAME] [--timezone TZ]

User mistakes, argparse's included, print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from nas.config import Params, load_params
from nas.errors import UserError
from nas.stores import redact_text

STAGES = ("prepare", "search", "retrain", "evaluate")


class _Parser(argparse.ArgumentParser):
    """argparse's own errors (unknown option, ``--runs abc``, a missing argument) as one line too, not usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"nas: error: {' '.join(message.splitlines())}; see {self.prog} --help\n")


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


def validate(args: argparse.Namespace) -> None:
    load_params(args.params)
    print(f"{args.params}: ok")


def stage(args: argparse.Namespace) -> None:
    _stage(args.command)(load_params(args.params))


def bench(args: argparse.Namespace) -> None:
    from nas.tabular import NB201_CIFAR10
    from nas.tabular.bench import compare, resolve_strategies
    from nas.tracking import tracking_uri

    uri = None if args.no_tracking else tracking_uri(args.tracking_uri)
    compare(args.table or NB201_CIFAR10, resolve_strategies(args.strategies), args.runs, args.budget_s, args.out,
            args.seed, args.jobs, uri, args.experiment, fidelity=args.fidelity)


def predict(args: argparse.Namespace) -> None:
    from nas.serving import predict_files
    from nas.tracking import tracking_uri

    uri = tracking_uri(args.tracking_uri)
    shown = f"MLFLOW_TRACKING_URI={uri}" if os.environ.get("MLFLOW_TRACKING_URI") else None
    for name, label, probability in predict_files(args.model, args.input, uri, shown):
        print(f"{name}\t{label}\t{probability:.4f}")


def schedule(args: argparse.Namespace) -> None:
    # Prefect lives in flows/, and the other commands do not pay for importing it.
    from flows.schedule import serve

    serve(args.cron, args.interval, args.params, args.name, args.timezone)


def parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nas", description="Neural architecture search pipeline.")
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    for name in ("validate", *STAGES):
        sub = commands.add_parser(name, help="check params.yaml" if name == "validate" else f"run the {name} stage")
        sub.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        sub.set_defaults(run=validate if name == "validate" else stage)
    b = commands.add_parser("bench", help="compare strategies under the NAS-Bench-201 protocol on a tabular benchmark")
    b.add_argument("--table", help="benchmark table in the NAS-Bench-201 CSV format (default: the shipped CIFAR-10 one)")
    b.add_argument("--strategies", default="random,re,local", help="comma-separated strategy names")
    b.add_argument("--runs", type=int, default=300, help="independent runs per strategy (default 300)")
    b.add_argument("--budget-s", type=float, default=12_000.0, help="simulated seconds per run (default 12000)")
    b.add_argument("--out", default="reports/bench", help="output folder (default reports/bench)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    b.add_argument("--fidelity", choices=("single", "multi"), default="single",
                   help="single: every evaluation is the 12-epoch one (the paper's protocol); multi: a multi-fidelity "
                        "strategy (bohb) may also buy 200-epoch validation accuracy, at 200/12 times the cost")
    b.add_argument("--experiment", default="nas-bench", help="MLflow experiment (default nas-bench)")
    b.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store; MLFLOW_TRACKING_URI wins")
    b.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    b.set_defaults(run=bench)
    p = commands.add_parser("predict", help="class and probability of images from a registered model")
    p.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/nas-digits@champion")
    p.add_argument("--input", required=True, nargs="+", help="image files and/or .npy arrays of 0..255 pixels")
    p.add_argument("--tracking-uri", default="sqlite:///mlflow.db", help="MLflow store; MLFLOW_TRACKING_URI wins")
    p.set_defaults(run=predict)
    s = commands.add_parser("schedule", help="serve the pipeline on a schedule via the Prefect server in PREFECT_API_URL")
    when = s.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", help='cron expression, e.g. "0 2 * * *" (02:00 every day)')
    when.add_argument("--interval", type=float, help="seconds between runs")
    s.add_argument("--timezone", default="UTC", help="IANA time zone the cron expression is read in (default UTC)")
    s.add_argument("--params", default="params.yaml", help="params file, read by every run (default: params.yaml)")
    s.add_argument("--name", default="nas-pipeline-scheduled", help="deployment name (default nas-pipeline-scheduled)")
    s.set_defaults(run=schedule)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except UserError as exc:
        print(f"nas: error: {redact_text(' '.join(str(exc).splitlines()))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nas: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
