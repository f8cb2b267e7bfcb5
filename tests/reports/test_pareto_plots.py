"""The Pareto front and hypervolume plots: what they draw, read back from the figure they save."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from nas.reports.plots import hypervolume_plot, pareto_front_plot
from nas.search.pareto import costs, hypervolume_history

DIRECTIONS = ("maximize", "minimize")
NAMES = ("val_accuracy", "params_m")
# (accuracy, millions of parameters): rows 0, 1, 3 are the front; 2 and 4 are dominated; 5 would dominate all but
# breaks a constraint.
VALUES = [[0.80, 0.2], [0.90, 0.5], [0.85, 0.6], [0.95, 1.0], [0.70, 0.9], [0.99, 0.1]]


@pytest.fixture
def saved(monkeypatch) -> list[Figure]:
    """The figures the plots write, kept to read back what was drawn."""
    figures, save = [], Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def _points(ax, label: str) -> set[tuple[float, float]]:
    [collection] = [c for c in ax.collections if c.get_label().startswith(label)]
    return {tuple(np.round(p, 6)) for p in collection.get_offsets()}


def _valid_png(path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_front_of_the_feasible_trials_as_a_staircase(tmp_path, saved):
    path = pareto_front_plot(VALUES, DIRECTIONS, NAMES, tmp_path / "front.png", selected=1, infeasible=[5])
    width, height = _valid_png(path)
    assert path == tmp_path / "front.png" and width > 400 and height > 300
    [ax] = saved[0].axes
    front = {(0.80, 0.2), (0.90, 0.5), (0.95, 1.0)}
    assert _points(ax, "Pareto front") == front
    assert _points(ax, "infeasible") == {(0.99, 0.1)}  # never on the front, though it dominates every trial
    assert _points(ax, "trial") == {(0.85, 0.6), (0.70, 0.9)}
    assert _points(ax, "retrained") == {(0.90, 0.5)}
    [line] = ax.get_lines()
    assert line.get_xdata().tolist() == [0.80, 0.90, 0.95]  # the members in order along x
    assert line.get_ydata().tolist() == [0.2, 0.5, 1.0]
    # x (accuracy) is maximised: from each member the boundary rises first, then runs right.
    assert line.get_drawstyle() == "steps-pre"
    assert "val_accuracy" in ax.get_xlabel() and "higher is better" in ax.get_xlabel()
    assert "millions" in ax.get_ylabel() and "lower is better" in ax.get_ylabel()


def test_a_minimised_x_turns_along_x_first(tmp_path, saved):
    swapped = [row[::-1] for row in VALUES]
    pareto_front_plot(swapped, DIRECTIONS[::-1], NAMES[::-1], tmp_path / "front.png", infeasible=[5])
    [line] = saved[0].axes[0].get_lines()
    assert line.get_drawstyle() == "steps-post"
    assert line.get_xdata().tolist() == [0.2, 0.5, 1.0]


def test_a_given_front_is_drawn_as_given(tmp_path, saved):
    mask = np.array([True, False, False, False, False, True])
    pareto_front_plot(VALUES, DIRECTIONS, NAMES, tmp_path / "front.png", front=mask)
    ax = saved[0].axes[0]
    assert _points(ax, "Pareto front") == {(0.80, 0.2), (0.99, 0.1)}
    assert {c.get_label() for c in ax.collections} == {"trial", "Pareto front"}  # no empty infeasible or retrained


def test_three_objectives_one_panel_per_pair(tmp_path, saved):
    rng = np.random.default_rng(0)
    values = rng.random((30, 3))
    directions = ("maximize", "minimize", "minimize")
    path = pareto_front_plot(values, directions, ("val_accuracy", "params_m", "latency_ms"), tmp_path / "f3.png")
    _valid_png(path)
    axes = saved[0].axes
    assert len(axes) == 3
    on_front = {tuple(np.round(v, 6)) for v in values[costs(values, directions).argsort(axis=0)[0]]}  # extremes
    expected = {tuple(np.round(v, 6)) for v in values[_front(values, directions)]}
    assert on_front <= expected  # each objective's best trial is on the front
    for ax, (i, j) in zip(axes, [(0, 1), (0, 2), (1, 2)]):
        assert _points(ax, "Pareto front") == {(a[i], a[j]) for a in expected}
        assert not ax.get_lines()  # a projected front is not a staircase


def _front(values, directions):
    cost = costs(values, directions)
    return [i for i in range(len(cost)) if not any(np.all(c <= cost[i]) and np.any(c < cost[i]) for c in cost)]


def test_hypervolume_after_each_trial(tmp_path, saved):
    cost = costs(VALUES[:5], DIRECTIONS)
    reference = np.array([0.0, 2.0])
    history = hypervolume_history(cost, reference)
    path = hypervolume_plot(history, tmp_path / "hv.png", reference=reference, optimum=2.0)
    _valid_png(path)
    [ax] = saved[0].axes
    found, optimum = ax.get_lines()
    assert found.get_xdata().tolist() == [1, 2, 3, 4, 5]
    assert found.get_ydata().tolist() == history
    assert found.get_drawstyle() == "steps-post"
    assert list(optimum.get_ydata()) == [2.0, 2.0]
    assert "reference point (0.0, 2.0)" in ax.get_title()
    hypervolume_plot(history, tmp_path / "hv1.png", reference=reference, title="mo_re on nb201 / digits")
    assert saved[1].axes[0].get_title() == "mo_re on nb201 / digits\nreference point (0.0, 2.0)"  # kept with a title
    assert "after trial 5" in found.get_label()

    hypervolume_plot(history, tmp_path / "hv2.png", numbers=[0, 2, 3, 6, 7])  # trials 1, 4 and 5 were pruned
    [ax] = saved[2].axes
    assert ax.get_lines()[0].get_xdata().tolist() == [0, 2, 3, 6, 7] and ax.get_xlabel() == "trial number"
    assert "after trial 7" in ax.get_lines()[0].get_label()


def test_plots_of_an_empty_search_still_write(tmp_path, saved):
    assert _valid_png(pareto_front_plot([], DIRECTIONS, NAMES, tmp_path / "front.png"))
    assert _valid_png(hypervolume_plot([], tmp_path / "hv.png"))
    assert not saved[0].axes[0].collections and not saved[0].axes[0].get_lines()
