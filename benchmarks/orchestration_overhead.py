"""Orchestration overhead: the same search with tracking on (the search stage's Prefect task in a flow, its lines
through Prefect's run logger, MLflow SQLite store, Optuna SQLite storage) versus off (in-memory Optuna study, no
MLflow, no Prefect), as a ratio of wall time.

Trials are sized to ~2 s (digits, C=8, N=1, 8 epochs); a search has 24 of them by default, as the pipeline's search
(params.yaml ``search.n_trials``): what a search pays once (the flow run, opening the stores, the parent run) is spread
over the trials a search runs. The stores are created by a warm-up search first, as a user's first search creates them;
every timed search then adds a study and a parent run to them. The Prefect API server is started before timing: a user
of flows runs against a server (`prefect server start`, Prefect Cloud); the one-off start of the ephemeral server that
`dvc repro` stages pay when PREFECT_API_URL is unset is measured and printed separately.

This machine's speed drifts by up to 20 % from one 40-second run to the next, so each repeat runs the two searches back
to back, in alternating order, and the ratio is the median of the repeats' ratios (a ratio of two medians mixes
repeats run at different speeds).

Also printed: the wall time of an empty flow run with Prefect's flow-run heartbeat on (its default, every 180 s) and
off, what every tracked search pays once (it is in the ratio). Stopping the heartbeat thread waits out its current
one-second sleep, so every flow run ends up to a second later than its work (Prefect 3.8,
``prefect.flow_engine._send_heartbeats``).

Usage: python benchmarks/orchestration_overhead.py [--trials 24] [--repeats 3]
Last line: ``RESULT orchestration_overhead=... overhead_equal_training=... ms_per_trial_off=... ms_per_trial_on=...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import optuna
import yaml

from nas.config import Params
from nas.data import load_prepared, prepare
from nas.search import records, run_search
from nas.search.stage import make_objective
from nas.spaces import SPACES
from nas.strategies import make_sampler


def params_for(folder: Path, trials: int) -> Params:
    """One search per folder; the stores are shared, as a user's searches share theirs (steady state: the stores
    exist, as after a user's first search)."""
    return Params.model_validate({
        "data": {"out": str(folder / "prepared")},
        "search": {"n_trials": trials, "epochs": 8, "channels": 8, "cells_per_stage": 1,
                   "storage": f"sqlite:///{folder.parent / 'optuna.db'}", "study_name": f"bench-{folder.name}"},
        "tracking": {"uri": f"sqlite:///{folder.parent / 'mlflow.db'}"},
    })


def workdir(base: Path, name: str) -> Path:
    """A folder of its own for one run (the stage writes models/ and reports/ in the working directory)."""
    folder = base / name
    folder.mkdir()
    (folder / "prepared").symlink_to(base / "prepared")
    os.chdir(folder)
    return folder


def tracking_off(params: Params) -> tuple[float, float]:
    """Wall seconds of the whole search and the part of it spent training."""
    start = time.perf_counter()
    s = params.search
    sampler = make_sampler(s.strategy, SPACES[s.space], s.seed, s.strategy_options, s.lag)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    done = run_search(study, SPACES[s.space], make_objective(params, load_prepared(params.data.out), None, "cpu"),
                      s.n_trials, lambda line: None, lag=s.lag)
    return time.perf_counter() - start, sum(t.seconds for t in done)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness

    from flows.search import run_search_task

    @flow(name="search", log_prints=True)
    def search_flow(p: Params) -> dict:
        """The search stage's own task (its trial lines through Prefect's run logger), without the stage's report."""
        path = Path("params.yaml")
        path.write_text(yaml.safe_dump(p.model_dump(mode="json")))
        return run_search_task(str(path))

    @flow(name="empty")
    def empty_flow() -> None:
        return None

    def flow_cost() -> tuple[float, float]:
        """Median wall seconds of an empty flow run with Prefect's flow-run heartbeat on (its default) and off."""
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

        def timed() -> float:
            start = time.perf_counter()
            empty_flow()
            return time.perf_counter() - start

        on = statistics.median(timed() for _ in range(5))
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            off = statistics.median(timed() for _ in range(5))
        return on, off

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        prepare(params_for(base, 1).data)
        here = os.getcwd()
        t0 = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=120):
            server_start = time.perf_counter() - t0
            search_flow(params_for(workdir(base, "warmup"), 1))  # first flow run: client set-up, store migrations
            empty_beating, empty_quiet = flow_cost()
            offs, ons, extra_off, extra_on, train = [], [], [], [], []
            for r in range(args.repeats):
                folder = workdir(base, f"run{r}")
                # Alternate which goes first: the machine's speed drifts between runs.
                for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    if mode == "off":
                        wall, trained = tracking_off(params_for(folder, args.trials))
                        offs.append(wall)
                        extra_off.append(wall - trained)
                        train.append(trained)
                    else:
                        start = time.perf_counter()
                        found = search_flow(params_for(folder, args.trials))
                        ons.append(time.perf_counter() - start)
                        study = optuna.load_study(study_name=found["study_name"], storage=found["storage"])
                        extra_on.append(ons[-1] - sum(t.seconds for t in records(study)))
                print(f"repeat {r}: off {offs[-1]:.2f} s, on {ons[-1]:.2f} s; "
                      f"outside training: off {extra_off[-1]:.2f} s, on {extra_on[-1]:.2f} s")
        os.chdir(here)
    off, on = statistics.median(offs), statistics.median(ons)
    ratio = statistics.median(b / a for a, b in zip(offs, ons))
    print(f"\n=== orchestration overhead, {args.trials} trials of ~{off / args.trials:.2f} s ===")
    print(f"tracking off (in-memory Optuna, no MLflow, no Prefect): median {off:.2f} s")
    print(f"tracking on  (Prefect flow + MLflow SQLite + Optuna SQLite): median {on:.2f} s")
    print(f"ratio on/off, median of the repeats' ratios {[round(b / a, 3) for a, b in zip(offs, ons)]}: {ratio:.3f}"
          "   (target <= 1.05)")
    # Training time varies by a few percent from run to run on a shared machine; the time spent outside training is
    # what orchestration adds, so the ratio with training time held equal isolates it.
    t, e_off, e_on = statistics.median(train), statistics.median(extra_off), statistics.median(extra_on)
    per_off, per_on = e_off / args.trials * 1000, e_on / args.trials * 1000
    print(f"time outside training per trial: off {per_off:.0f} ms, on {per_on:.0f} ms")
    print(f"ratio with equal training time: {(t + e_on) / (t + e_off):.3f}")
    print(f"one-off Prefect server start (not in the ratio): {server_start:.1f} s")
    print(f"an empty flow run (in the ratio, once per search): {empty_beating:.2f} s with Prefect's flow-run "
          f"heartbeat, {empty_quiet:.2f} s without")
    print(f"RESULT orchestration_overhead={ratio:.3f} overhead_equal_training={(t + e_on) / (t + e_off):.3f} "
          f"ms_per_trial_off={per_off:.0f} ms_per_trial_on={per_on:.0f}")


if __name__ == "__main__":
    main()
