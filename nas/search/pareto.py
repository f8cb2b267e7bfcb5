"""Pareto fronts of multi-objective searches: ranks, the front, its hypervolume, and which member to retrain.

Every function takes *costs*: an ``(n, k)`` array where lower is better in every column (a maximised objective is
negated first, ``costs(values, directions)``), as Optuna's multi-objective code does.

    >>> front_mask(np.array([[1.0, 3.0], [2.0, 2.0], [2.0, 3.0]])).tolist()
    [True, True, False]
    >>> hypervolume(np.array([[1.0, 3.0], [2.0, 2.0]]), np.array([4.0, 4.0]))
    5.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Optuna's exact hypervolume (WFG; the 2-D case in O(n log n)) and its non-dominated sort. They are private names
# of optuna>=4,<5 (pyproject pins the major): tests/search/test_pareto.py checks them against sums done by hand.
from optuna._hypervolume import compute_hypervolume
from optuna.study._multi_objective import _fast_non_domination_rank


def costs(values: Sequence[Sequence[float]], directions: Sequence[str]) -> np.ndarray:
    """``values`` (one row per trial, one column per objective) with every column turned into one to minimise."""
    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    return np.asarray(values, dtype=float).reshape(-1, len(signs)) * signs


def ranks(cost: np.ndarray) -> np.ndarray:
    """Non-dominated rank of each row: 0 for the front, 1 for the front once it is removed, and so on."""
    if len(cost) == 0:
        return np.zeros(0, dtype=int)
    return _fast_non_domination_rank(np.asarray(cost, dtype=float))


def front_mask(cost: np.ndarray) -> np.ndarray:
    """Which rows no other row dominates (duplicates of a front point are all on it)."""
    return ranks(cost) == 0


def hypervolume(cost: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by the rows and bounded by ``reference`` (rows not strictly better than it add nothing)."""
    cost = np.asarray(cost, dtype=float)
    reference = np.asarray(reference, dtype=float)
    inside = cost[np.all(cost < reference, axis=1)] if len(cost) else cost
    if len(inside) == 0:
        return 0.0
    return float(compute_hypervolume(inside, reference))


def crowding(cost: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row among the rows given (infinite at each objective's extremes)."""
    n, k = cost.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(k):
        order = np.argsort(cost[:, j], kind="stable")
        span = cost[order[-1], j] - cost[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (cost[order[2:], j] - cost[order[:-2], j]) / span
    return distance


def knee(cost: np.ndarray) -> int:
    """Index of the knee of the front among the rows: the front member farthest below the line (plane) through the
    front's extremes, with every objective scaled to [0, 1] over the front (Das 1999, "normal boundary
    intersection"; Branke et al. 2004). A front of one or two members has no knee (each is an extreme), nor has one
    objective: then the front member best in the first objective."""
    cost = np.asarray(cost, dtype=float)
    on_front = np.flatnonzero(front_mask(cost))
    front = cost[on_front]
    low, high = front.min(axis=0), front.max(axis=0)
    scaled = (front - low) / np.where(high > low, high - low, 1.0)
    if len(on_front) <= 2 or cost.shape[1] == 1:
        return int(on_front[np.argmin(front[:, 0])])
    # The extreme of objective j: the member best in it (of those, the best in the rest). The plane n . x = 1 through
    # the extremes; with two objectives they are (0, 1) and (1, 0) and it is x + y = 1. Where the extremes do not span
    # a plane (one member extreme in two objectives), the plane through the unit points.
    extremes = scaled[[np.lexsort((scaled.sum(axis=1), scaled[:, j]))[0] for j in range(cost.shape[1])]]
    normal = np.linalg.lstsq(extremes, np.ones(len(extremes)), rcond=None)[0]
    if not np.allclose(extremes @ normal, 1.0) or np.linalg.matrix_rank(extremes) < len(extremes):
        normal = np.ones(cost.shape[1])
    # Distance below the plane (towards the ideal point, the origin): the larger, the kneeier.
    return int(on_front[np.argmax((1.0 - scaled @ normal) / np.linalg.norm(normal))])


def hypervolume_history(cost: np.ndarray, reference: np.ndarray) -> list[float]:
    """Hypervolume of the first ``i + 1`` rows, for each ``i``: how the front grew, trial by trial."""
    history, front = [], np.zeros((0, cost.shape[1]))
    for row in np.asarray(cost, dtype=float):
        front = np.vstack([front, row])
        front = front[front_mask(front)]
        history.append(hypervolume(front, reference))
    return history


def front_of(trials: Sequence[Any], objectives: dict[str, str]) -> list[Any]:
    """The feasible trials (records with ``values`` by objective name and ``feasible``) no other one dominates, in
    trial order."""
    feasible = [t for t in trials if t.feasible]
    if not feasible:
        return []
    cost = costs([[t.values[n] for n in objectives] for t in feasible], list(objectives.values()))
    return [t for t, on in zip(feasible, front_mask(cost)) if on]


def best_of(trials: Sequence[Any], objectives: dict[str, str]) -> Any:
    """The search's best of the feasible trials (records as for ``front_of``, with ``val_accuracy`` and ``budget``):
    the most accurate at the largest budget trained (a multi-fidelity strategy's incumbent, BOHB's). With several
    objectives it is a front member, so that of trials equally accurate it is one no worse in the others."""
    pool = front_of(trials, objectives) if len(objectives) > 1 else [t for t in trials if t.feasible]
    return max(pool, key=lambda t: (t.budget or 0, t.val_accuracy))


def reference_point(trials: Sequence[Any], objectives: dict[str, str],
                    constraints: dict[str, float]) -> dict[str, float]:
    """Where the hypervolume is measured from: 0 for a maximised objective (accuracy); for a minimised one, its bound
    in ``search.constraints`` or else 1.1 × the worst value among the feasible trials (nadir plus 10 %, the usual
    choice when no natural bound exists)."""
    feasible = [t for t in trials if t.feasible] or trials
    out = {}
    for name, direction in objectives.items():
        if direction == "maximize":
            out[name] = 0.0
        else:
            out[name] = constraints.get(name, 1.1 * max((t.values[name] for t in feasible), default=1.0))
    return out


def trial_hypervolumes(trials: Sequence[Any], objectives: dict[str, str], reference: dict[str, float]) -> list[float]:
    """The hypervolume of the feasible trials' front after each trial, in trial order."""
    directions = list(objectives.values())
    cost = costs([[t.values[n] if t.feasible else np.inf for n in objectives] for t in trials], directions)
    return hypervolume_history(cost, costs([list(reference.values())], directions)[0])


__all__ = ["best_of", "costs", "crowding", "front_mask", "front_of", "hypervolume", "hypervolume_history", "knee",
           "ranks", "reference_point", "trial_hypervolumes"]
