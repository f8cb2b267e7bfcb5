"""The two-objective NAS-Bench-201 protocol: the true front, the reference point, and what a run reports."""

import itertools
import math

import numpy as np
import pytest

from nas.errors import UserError
from nas.search.pareto import costs, front_mask
from nas.spaces import SPACES
from nas.strategies import make_strategy
from nas.tabular import TabularBenchmark
from nas.tabular.multi_objective import (
    DIRECTIONS,
    hv_fraction,
    reference_point,
    run_multi_objective,
    true_front,
    values,
)

space = SPACES["nb201"]


@pytest.fixture(scope="module")
def bench() -> TabularBenchmark:
    return TabularBenchmark.from_csv()


def staircase_area(points: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by ``points`` (accuracy up, params down) and bounded by ``reference``, summed by hand: strips
    between consecutive params values, each as high as the best accuracy at or below it (points not better than the
    reference in both objectives add nothing)."""
    points = points[(points[:, 0] > reference[0]) & (points[:, 1] < reference[1])]
    edges = np.unique(np.append(points[:, 1], reference[1]))
    return sum((right - left) * (points[points[:, 1] <= left, 0].max() - reference[0])
               for left, right in itertools.pairwise(edges))


def test_true_front_is_the_non_dominated_part_of_the_table(bench):
    front = true_front(bench)
    table = np.array([values(bench, a) for a in bench.entries])
    # no row of the table is better in one objective and at least as good in the other than a front point
    for acc, params in front:
        at_least_as_good = (table[:, 0] >= acc) & (table[:, 1] <= params)
        assert not np.any(at_least_as_good & ((table[:, 0] > acc) | (table[:, 1] < params)))
    assert front[:, 0].max() == table[:, 0].max() and front[:, 1].min() == table[:, 1].min()
    assert len(front) == front_mask(costs(table, DIRECTIONS)).sum()


def test_reference_points_and_the_true_fronts_hypervolume(bench):
    front = true_front(bench)
    ref = reference_point(bench)
    nadir, ideal = np.array([front[:, 0].min(), front[:, 1].max()]), np.array([front[:, 0].max(), front[:, 1].min()])
    assert np.allclose(ref, nadir + 0.1 * (nadir - ideal)) and ref[0] < nadir[0] and ref[1] > nadir[1]
    table = reference_point(bench, "table")
    assert table.tolist() == [min(e.val_acc_12 for e in bench.entries.values()),
                              max(e.params_m for e in bench.entries.values())]
    assert hv_fraction(front, bench, ref) == pytest.approx(1.0)
    # The fraction's denominator is the front's volume: half the front has a known share of it.
    half = front[front[:, 1] <= np.median(front[:, 1])]
    assert hv_fraction(half, bench, ref) == pytest.approx(staircase_area(half, ref) / staircase_area(front, ref))


@pytest.mark.parametrize("name", ["lemonade", "mo_regularized_evolution", "nsga2"])
def test_a_run_reports_its_front_and_a_fraction_of_the_true_one(bench, name):
    strategy = make_strategy(name, space, 0, directions=DIRECTIONS, cheap=lambda arch: (None, bench[arch].params_m))
    run = run_multi_objective(strategy, bench, budget_s=3000.0)
    points = np.array([(p[1], p[2]) for p in run.front])
    assert 0 < run.hv_fraction <= 1 and run.sim_time_s <= 3000.0 and 10 < run.queries < 100
    assert front_mask(costs(points, DIRECTIONS)).all()  # the reported front is non-dominated
    assert [values(bench, space.decode(arch)) for arch, *_ in run.front] == [tuple(p) for p in points]
    assert run.hypervolume == pytest.approx(staircase_area(points, reference_point(bench)))
    assert run.hv_fraction == pytest.approx(run.hypervolume / staircase_area(true_front(bench), reference_point(bench)))


def test_more_budget_finds_more_of_the_front(bench):
    def fraction(budget_s):
        strategy = make_strategy("lemonade", space, 1, directions=DIRECTIONS)
        return run_multi_objective(strategy, bench, budget_s).hv_fraction

    assert fraction(12_000.0) > fraction(1_000.0)


@pytest.mark.parametrize("budget_s,message", [
    (0.0, "budget_s 0: must be a finite number of simulated seconds > 0"),
    (math.inf, "budget_s inf: must be a finite number"),
    (math.nan, "budget_s nan: must be a finite number"),
    (20.0, r"budget_s 20: buys no evaluation \(the first proposal costs .* s\); give at least 207.65 s"),
])
def test_bad_budget_is_one_clear_error(bench, budget_s, message):
    with pytest.raises(UserError, match=message):
        run_multi_objective(make_strategy("lemonade", space, 0, directions=DIRECTIONS), bench, budget_s)
