"""``nas bench``: strategies compared under the NAS-Bench-201 protocol on a tabular benchmark.

For each strategy, ``runs`` independent runs seeded from ``(seed, run)`` (so run r of every strategy shares its
seed); writes ``results.csv`` (one row per run), ``summary.csv`` (mean and std of test_acc_200 per strategy) and
``anytime.png`` (mean best-so-far test_acc_200 against simulated time, ±1 std band). ``fidelity="multi"`` lets a
multi-fidelity strategy pay for ``val_acc_200`` too (``nas.tabular.protocol``); results.csv then counts those
evaluations in ``queries_200``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd

from nas.errors import UserError, check_writable
from nas.spaces import SPACES
from nas.stores import is_sqlite_file, redact, require_driver, sqlite_path
from nas.strategies import make_strategy, resolve
from nas.strategy_registry import ONESHOT
from nas.tabular.benchmark import TabularBenchmark
from nas.tabular.protocol import FIDELITIES, HIGH, LOW, ProtocolRun, run_protocol

_TABLES: dict[str, TabularBenchmark] = {}  # one parsed table per worker process
# Options a strategy runs with on the table: BOHB's budgets are the table's two fidelities, so each Hyperband bracket
# is 12 epochs then 200 (eta = 200/12: one promotion), or 200 alone.
TABULAR_OPTIONS: dict[str, dict[str, float]] = {"bohb": {"min_budget": LOW, "max_budget": HIGH, "eta": HIGH / LOW}}


def run_seed(seed: int, run: int) -> int:
    return int(np.random.SeedSequence([seed, run]).generate_state(1)[0])


def _registered(name: str) -> bool:
    try:
        resolve(name)
    except ValueError:
        return False
    return True


def _resolve(name: str) -> str:
    # Until "bohb" is in nas/strategy_registry.py (the lead's change), the bench knows it by name itself.
    return name if name == "bohb" and not _registered(name) else resolve(name)


def bench_strategy(name: str, seed: int) -> object:
    """Strategy ``name`` over the NB201 space with the bench's options for it (``TABULAR_OPTIONS``)."""
    if name == "bohb" and not _registered(name):  # see _resolve: drop once the registry has it
        from nas.strategies.bohb import BOHB

        return BOHB(SPACES["nb201"], seed, **TABULAR_OPTIONS["bohb"])
    return make_strategy(name, SPACES["nb201"], seed, TABULAR_OPTIONS.get(name))


def _one_run(table: str, strategy: str, run: int, seed: int, budget_s: float, fidelity: str = "single") -> ProtocolRun:
    if table not in _TABLES:
        _TABLES[table] = TabularBenchmark.from_csv(table)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "torch" in sys.modules:  # one thread per worker process: --jobs sets the parallelism
        sys.modules["torch"].set_num_threads(1)
    return run_protocol(bench_strategy(strategy, run_seed(seed, run)), _TABLES[table], budget_s, fidelity=fidelity)


def load_table(table: str | Path, budget_s: float) -> TabularBenchmark:
    """The table, parsed and checked (a UserError with the table's own error line), and ``budget_s`` checked against
    its dearest architecture; kept for this process's runs."""
    table = str(table)
    bench = _TABLES[table] = TabularBenchmark.from_csv(table)
    dearest = max(e.train_time_12_s for e in bench.entries.values())
    if budget_s < dearest:  # a run whose first proposal costs more than the budget would have no result
        raise UserError(f"--budget-s {budget_s:g}: less than the {dearest:g} s of the dearest architecture in {table}; "
                        f"give at least that")
    return bench


def run_bench(
    table: str | Path, strategies: Sequence[str], runs: int, budget_s: float, seed: int = 0, jobs: int = 1,
    report: Callable[[str], None] = print, fidelity: str = "single",
) -> tuple[pd.DataFrame, dict[str, list[ProtocolRun]]]:
    """Returns the results table and, per strategy, the runs (with their anytime curves)."""
    table = str(table)
    load_table(table, budget_s)
    out: dict[str, list[ProtocolRun]] = {}
    pool = ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else None
    try:
        for name in strategies:
            start = time.perf_counter()
            if pool:
                futures = [pool.submit(_one_run, table, name, r, seed, budget_s, fidelity) for r in range(runs)]
                out[name] = [f.result() for f in futures]
            else:
                out[name] = [_one_run(table, name, r, seed, budget_s, fidelity) for r in range(runs)]
            acc = np.array([r.test_acc_200 for r in out[name]])
            report(f"[bench] {name:<22} {runs} runs  test_acc_200 {acc.mean():.2f} ± {acc.std():.2f}  "
                   f"({time.perf_counter() - start:.1f} s)")
    finally:
        if pool:
            pool.shutdown()
    rows = [{"strategy": name, "run": i, **{k: v for k, v in asdict(r).items() if k != "anytime"}}
            for name, results in out.items() for i, r in enumerate(results)]
    columns = ["strategy", "run", "arch", "val_acc_12", "test_acc_200", "queries", "sim_time_s"]
    columns += ["queries_200"] if fidelity == "multi" else []
    return pd.DataFrame(rows, columns=columns), out


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    grouped = results.groupby("strategy", sort=False)["test_acc_200"]
    summary = pd.DataFrame({"runs": grouped.size(), "mean_test_acc_200": grouped.mean(),
                            "std_test_acc_200": grouped.std(ddof=0)})
    return summary.reset_index().round(4)


def anytime_plot(runs: dict[str, list[ProtocolRun]], budget_s: float, path: Path) -> Path:
    grid = np.geomspace(budget_s / 200, budget_s, 200)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    low, high = [], []
    for name, results in runs.items():
        curves = []
        for r in results:
            times, accs = zip(*r.anytime, strict=True)
            idx = np.searchsorted(times, grid, side="right") - 1  # best so far at each grid time
            curves.append(np.where(idx >= 0, np.asarray(accs)[np.clip(idx, 0, None)], np.nan))
        curves = np.array(curves)
        valid = ~np.any(np.isnan(curves), axis=0)  # from the time every run has evaluated something
        mean, std = curves[:, valid].mean(axis=0), curves[:, valid].std(axis=0)
        ax.plot(grid[valid], mean, label=name)
        ax.fill_between(grid[valid], mean - std, mean + std, alpha=0.15)
        late = grid[valid] >= budget_s / 10  # zoom on where strategies differ, not the noisy first evaluations
        low.extend((mean - std)[late])
        high.extend((mean + std)[late])
    ax.set_xscale("log")
    if low:
        ax.set_ylim(min(low) - 0.3, max(high) + 0.3)
    ax.set_xlabel("simulated training time (s)")
    ax.set_ylabel("test accuracy of best-by-validation architecture (%)")
    ax.set_title(f"NAS-Bench-201 protocol, {len(next(iter(runs.values())))} runs per strategy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_bench(results: pd.DataFrame, runs: dict[str, list[ProtocolRun]], budget_s: float, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    summarize(results).to_csv(out / "summary.csv", index=False)
    return [out / "results.csv", out / "summary.csv", anytime_plot(runs, budget_s, out / "anytime.png")]


def resolve_strategies(text: str) -> list[str]:
    """Comma-separated names (aliases allowed) -> registry names; UserError naming the allowed ones, or the strategy
    that cannot be built without options (``optuna.GridSampler`` needs a search space)."""
    try:
        names = [_resolve(n.strip()) for n in text.split(",") if n.strip()]
    except ValueError as exc:
        raise UserError(f"--strategies: {exc}") from None
    if not names:
        raise UserError("--strategies: name at least one strategy")
    for name in names:
        if name in ONESHOT:
            raise UserError(f"--strategies: {name} trains a supernet on real data; a tabular benchmark looks "
                            "architectures up, so it runs the strategies that propose them")
        if names.count(name) > 1:
            raise UserError(f"--strategies: {name} is named twice (aliases included)")
        try:
            bench_strategy(name, 0)
        except (TypeError, ValueError) as exc:
            raise UserError(f"--strategies: {name} cannot run without options ({exc})") from None
    return names


def check_arguments(runs: int, budget_s: float, out: str | Path, seed: int = 0, jobs: int = 1,
                    tracking_uri: str | None = None, experiment: str = "nas-bench", fidelity: str = "single") -> None:
    """UserError naming the first unusable argument, so that nothing runs or is written with one."""
    if fidelity not in FIDELITIES:
        raise UserError(f"--fidelity {fidelity!r}: allowed {', '.join(FIDELITIES)}")
    if runs < 1:
        raise UserError(f"--runs {runs}: must be a whole number >= 1")
    if jobs < 1:
        raise UserError(f"--jobs {jobs}: must be a whole number >= 1")
    if seed < 0:
        raise UserError(f"--seed {seed}: must be a whole number >= 0")
    if not (0 < budget_s < math.inf):
        raise UserError(f"--budget-s {budget_s:g}: must be a finite number of simulated seconds > 0")
    check_writable(f"--out {out}", Path(out))
    if tracking_uri is None:
        return
    if not experiment.strip():
        raise UserError("--experiment: empty; name the MLflow experiment to log to (default nas-bench)")
    require_driver(tracking_uri, "--tracking-uri")
    db = sqlite_path(tracking_uri)
    if db in ("", ":memory:"):  # SQLite's in-memory database: the run would be gone when the command ends
        raise UserError(f"--tracking-uri {tracking_uri}: names no database file, so the run would be lost when "
                        "nas bench ends; e.g. sqlite:///mlflow.db")
    if db:  # else the results would be written, and only then the store found unusable
        store = Path(db)
        check_writable(f"MLflow store {tracking_uri}", store.parent)
        if store.exists() and not is_sqlite_file(store):
            raise UserError(f"MLflow store {tracking_uri}: {db} is not a SQLite database")


def compare(
    table: str | Path, strategies: Sequence[str], runs: int, budget_s: float, out: str | Path, seed: int = 0,
    jobs: int = 1, tracking_uri: str | None = None, experiment: str = "nas-bench",
    report: Callable[[str], None] = print, fidelity: str = "single",
) -> dict[str, object]:
    """Check the arguments and the table, run, write ``out/{results,summary}.csv`` and ``out/anytime.png``, and (with
    a tracking URI) log one MLflow parent run with a child per strategy. Returns the summary rows and the MLflow run
    id."""
    from nas.tracking import log_bench, open_tracking  # MLflow is imported only when a run is tracked

    check_arguments(runs, budget_s, out, seed, jobs, tracking_uri, experiment, fidelity)
    load_table(table, budget_s)  # a bad table is refused before the store is opened (which may create it)
    if tracking_uri:  # a store or experiment it cannot log to: refused before anything runs
        open_tracking(tracking_uri, experiment, "--tracking-uri", "--experiment")
    results, per_run = run_bench(table, strategies, runs, budget_s, seed, jobs, report, fidelity)
    paths = write_bench(results, per_run, budget_s, Path(out))
    report(f"[bench] wrote {', '.join(str(p) for p in paths)}")
    summary = summarize(results)
    run_id = None
    if tracking_uri:
        metrics = {row.strategy: {"mean_test_acc_200": row.mean_test_acc_200, "std_test_acc_200": row.std_test_acc_200,
                                  "runs": row.runs} for row in summary.itertuples()}
        params = {"table": str(table), "strategies": ",".join(strategies), "runs": runs, "budget_s": budget_s,
                  "seed": seed, "fidelity": fidelity}
        run_id = log_bench(tracking_uri, experiment, params, metrics, [str(p) for p in paths])
        report(f"[bench] MLflow run {run_id} at {redact(tracking_uri)}")
    return {"summary": summary.to_dict(orient="records"), "mlflow_run_id": run_id}
