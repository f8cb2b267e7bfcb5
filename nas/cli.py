"""The ``nas`` command: run a stage without Prefect, or check params.yaml.

    nas validate [--params params.yaml]
    nas prepare|search|retrain|evaluate [--params params.yaml]

User mistakes print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from nas.config import Params, load_params
from nas.errors import UserError


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nas", description="Neural architecture search pipeline.")
    parser.add_argument("command", choices=["validate", "prepare", "search", "retrain", "evaluate"])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    args = parser.parse_args(argv)
    try:
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
