"""The NAS-Bench-201 protocol with two objectives: ``val_acc_12`` (maximise) and ``params_m`` (minimise).

As in ``nas.tabular.protocol``, a strategy pays ``train_time_12_s`` of simulated time for each architecture it has
not evaluated before in the run, and the run stops when the next new evaluation would exceed the budget; here it is
told both objectives, ``Observation(arch, (val_acc_12, params_m))``, and the run is judged by the hypervolume of the
front of everything it evaluated, as a fraction of the hypervolume of the table's true front.

**Reference point** (``reference_point``): the true front's nadir pushed out by a tenth of the front's range in each
objective, ``nadir + 0.1 * (nadir - ideal)``: the usual ``r = 1.1`` on objectives normalised so that the true front
spans [0, 1] (Ishibuchi, Imada, Setoguchi & Nojima, "How to Specify a Reference Point in Hypervolume Calculation
for Fair Performance Comparison", Evolutionary Computation 2018, who recommend a point just beyond the front's nadir
so that the hypervolume rewards both the spread and the convergence of a front, its extremes included). On the
CIFAR-10 table it is (72.80 % val_acc_12, 1.1735 M params). The nadir of the whole table (``reference_point(bench,
"table")``: the worst val_acc_12, 9.7 %, and the most parameters, 1.53 M) is the other common choice; it is mostly
volume that any decent architecture dominates (random search reaches 0.98 of the true front with it), so it
separates strategies far less.

    >>> from nas.spaces import SPACES
    >>> from nas.strategies import make_strategy
    >>> bench = TabularBenchmark.from_csv()
    >>> run = run_multi_objective(make_strategy("lemonade", SPACES["nb201"], 0, directions=DIRECTIONS), bench)
    >>> 0 < run.hv_fraction <= 1
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nas.errors import UserError
from nas.search.pareto import costs, front_mask, hypervolume
from nas.strategies.base import Observation, unpack
from nas.tabular.benchmark import TabularBenchmark

OBJECTIVES: tuple[str, str] = ("val_acc_12", "params_m")
DIRECTIONS: tuple[str, str] = ("maximize", "minimize")
_FRONTS: dict[int, tuple[TabularBenchmark, np.ndarray]] = {}  # the true front of each table, computed once


@dataclass(frozen=True)
class MultiObjectiveRun:
    front: tuple[tuple[str, float, float], ...]  # (arch, val_acc_12, params_m) of the found front, by params_m
    hypervolume: float
    hv_fraction: float  # of the true front's hypervolume, same reference point
    queries: int  # distinct architectures paid for
    sim_time_s: float


def values(bench: TabularBenchmark, arch: Any) -> tuple[float, float]:
    """The two objectives of ``arch``, in ``OBJECTIVES`` order."""
    entry = bench[arch]
    return entry.val_acc_12, entry.params_m


def true_front(bench: TabularBenchmark) -> np.ndarray:
    """``(val_acc_12, params_m)`` of every architecture on the table's Pareto front (equal points repeated), by
    params_m."""
    cached = _FRONTS.get(id(bench))
    if cached is None or cached[0] is not bench:
        table = np.array([values(bench, arch) for arch in bench.entries])
        front = table[front_mask(costs(table, DIRECTIONS))]
        cached = _FRONTS[id(bench)] = (bench, front[np.lexsort((-front[:, 0], front[:, 1]))])
    return cached[1]


def reference_point(bench: TabularBenchmark, kind: Literal["front", "table"] = "front") -> np.ndarray:
    """``(val_acc_12, params_m)`` bounding the hypervolume (module doc): ``front``, the true front's nadir + 10 % of
    its range; ``table``, the worst value of each objective in the whole table."""
    if kind == "table":
        table = np.array([values(bench, arch) for arch in bench.entries])
        return np.array([table[:, 0].min(), table[:, 1].max()])
    front = true_front(bench)
    worst = np.array([front[:, 0].min(), front[:, 1].max()])
    best = np.array([front[:, 0].max(), front[:, 1].min()])
    return worst + 0.1 * (worst - best)


def hv_fraction(points: np.ndarray, bench: TabularBenchmark, reference: np.ndarray) -> float:
    """Hypervolume of ``points`` (rows ``(val_acc_12, params_m)``) over that of the true front, both bounded by
    ``reference`` (in the same units)."""
    bound = costs(reference, DIRECTIONS)[0]
    return hypervolume(costs(points, DIRECTIONS), bound) / hypervolume(costs(true_front(bench), DIRECTIONS), bound)


def run_multi_objective(strategy: Any, bench: TabularBenchmark, budget_s: float = 12_000.0,
                        max_repeats: int = 200, reference: np.ndarray | None = None) -> MultiObjectiveRun:
    """One run of ``strategy`` (built with ``directions=DIRECTIONS``) under the protocol.

    Args:
        max_repeats: a strategy that proposes only architectures it has already seen (those are free) this many
            times in a row has converged: the run ends there.
        reference: ``(val_acc_12, params_m)`` bounding the hypervolume; ``reference_point(bench)`` when None.

    Raises:
        UserError: a budget that is not a finite number of seconds > 0, or that buys no evaluation.
    """
    if not 0 < budget_s < math.inf:
        raise UserError(f"budget_s {budget_s:g}: must be a finite number of simulated seconds > 0")
    seen: dict[Any, tuple[float, float]] = {}
    sim_time, repeats = 0.0, 0
    while repeats < max_repeats:
        arch, _ = unpack(strategy.ask())  # a multi-fidelity proposal is measured at 12 epochs all the same
        repeats = repeats + 1 if arch in seen else 0
        if arch not in seen:
            cost = bench[arch].train_time_12_s
            if sim_time + cost > budget_s:
                break
            sim_time += cost
            seen[arch] = values(bench, arch)
        strategy.observe(Observation(arch, seen[arch]))
    if not seen:
        dearest = max(e.train_time_12_s for e in bench.entries.values())
        raise UserError(f"budget_s {budget_s:g}: buys no evaluation (the first proposal costs "
                        f"{bench[arch].train_time_12_s:g} s); give at least {dearest:g} s")
    archs = list(seen)
    points = np.array([seen[a] for a in archs])
    on_front = front_mask(costs(points, DIRECTIONS))
    front = sorted(((str(a), *seen[a]) for a, on in zip(archs, on_front) if on), key=lambda p: (p[2], -p[1], p[0]))
    reference = reference_point(bench) if reference is None else np.asarray(reference, dtype=float)
    volume = hypervolume(costs(points[on_front], DIRECTIONS), costs(reference, DIRECTIONS)[0])
    return MultiObjectiveRun(tuple(front), volume, hv_fraction(points[on_front], bench, reference), len(seen),
                             sim_time)


__all__ = ["DIRECTIONS", "OBJECTIVES", "MultiObjectiveRun", "hv_fraction", "reference_point", "run_multi_objective",
           "true_front", "values"]
