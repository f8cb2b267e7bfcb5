"""Plots people would rather look at than tables: search progress, the trials, the Pareto front of a multi-objective
search and its hypervolume, and the found architecture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import MaxNLocator

from nas.estimation.objectives import OBJECTIVES
from nas.search.pareto import costs, front_mask
from nas.spaces.darts.arch import CELLS, Genotype
from nas.spaces.macro import MacroArch
from nas.spaces.nb201 import EDGES, NB201Arch

OP_COLORS = {
    "skip_connect": "tab:gray",
    "nor_conv_1x1": "tab:blue",
    "nor_conv_3x3": "tab:red",
    "avg_pool_3x3": "tab:green",
    "max_pool_3x3": "tab:olive",
    "sep_conv_3x3": "tab:purple",
    "sep_conv_5x5": "tab:pink",
    "dil_conv_3x3": "tab:orange",
    "dil_conv_5x5": "tab:brown",
}


def search_progress_plot(numbers: Sequence[int], scores: Sequence[float], path: str | Path, title: str) -> Path:
    """The optimization history (Optuna's ``plot_optimization_history``, drawn from the trials given): each trained
    trial's val accuracy and the best so far, against trial number. Drawn here, not by Optuna: its plot shows no best
    for a multi-objective study and plots a trial that broke a constraint, never trained, at accuracy 0."""
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(numbers, scores, s=18, color="tab:blue", alpha=0.7, label="validation accuracy")
    ax.step(numbers, np.maximum.accumulate(np.asarray(scores, dtype=float)) if len(scores) else [], where="post",
            color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def trials_plot(numbers: Sequence[int], scores: Sequence[float], seconds: Sequence[float], path: str | Path,
                title: str) -> Path:
    """Each completed trial's val accuracy against its number, coloured by its training time; the best one
    marked."""
    fig, ax = plt.subplots(figsize=(7, 4))
    points = ax.scatter(numbers, scores, c=seconds, cmap="viridis", s=22)
    fig.colorbar(points, ax=ax, label="training seconds")
    if len(scores):
        best = max(range(len(scores)), key=scores.__getitem__)
        ax.scatter([numbers[best]], [scores[best]], marker="*", s=220, color="tab:red", zorder=3,
                   label=f"best: trial {numbers[best]} ({scores[best]:.4f})")
        ax.legend(loc="lower right")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


# Where each edge runs: arc bend (matplotlib arc3 rad; sign picks above/below) and the height of its label.
_EDGE_LAYOUT = {(1, 0): (0.0, 0.12), (2, 1): (0.0, 0.12), (3, 2): (0.0, 0.12),
                (2, 0): (-0.4, 0.9), (3, 1): (0.4, -0.95), (3, 0): (-0.5, 1.62)}


def cell_plot(arch: NB201Arch, path: str | Path) -> Path:
    """The NB201 cell as a DAG: nodes 0..3 left to right, one coloured arrow per edge, ``none`` edges left out."""
    fig, ax = plt.subplots(figsize=(8, 4.4))
    pos = {n: (n * 2.0, 0.0) for n in range(4)}
    for n, (x, y) in pos.items():
        ax.add_patch(plt.Circle((x, y), 0.28, color="lightsteelblue", zorder=3))
        ax.text(x, y, str(n), ha="center", va="center", fontsize=12, zorder=4)
    for (j, i), op in zip(EDGES, arch.ops):
        if op == "none":
            continue
        rad, label_y = _EDGE_LAYOUT[(j, i)]
        ax.add_patch(FancyArrowPatch(
            pos[i], pos[j], connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>", mutation_scale=14,
            color=OP_COLORS[op], lw=2, shrinkA=14, shrinkB=19, zorder=2,
        ))
        ax.text((pos[i][0] + pos[j][0]) / 2, label_y, op, ha="center", fontsize=9, color=OP_COLORS[op],
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    return _save_drawing(fig, ax, (-0.6, 6.6), (-1.4, 2.0), str(arch), 8, path)


def _save_drawing(fig, ax, xlim: tuple[float, float], ylim: tuple[float, float], title: str, fontsize: int,
                  path: str | Path) -> Path:
    """Frame an architecture drawing (equal aspect, no axes, its string as the title) and write the PNG."""
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=fontsize)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


LAYER_COLORS = {"conv": "tab:red", "sep_conv": "tab:purple", "dil_conv": "tab:orange", "max_pool": "tab:green",
                "avg_pool": "tab:olive", "identity": "tab:gray"}


def layer_plot(arch: MacroArch, path: str | Path) -> Path:
    """The macro network as a layer graph: stem, layers and head left to right, the chain below, skips as arcs
    above (solid: sum, dashed: concatenation)."""
    n = len(arch.layers)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.7 * (n + 2)), 4.0))
    labels = ["stem", *(_layer_label(layer) for layer in arch.layers), "head"]
    colors = ["lightsteelblue", *(LAYER_COLORS[layer.op] for layer in arch.layers), "lightsteelblue"]
    for k, (label, color) in enumerate(zip(labels, colors)):
        ax.add_patch(plt.Rectangle((k * 2 - 0.7, -0.35), 1.4, 0.7, color=color, alpha=0.35, zorder=2))
        ax.text(k * 2, 0, label, ha="center", va="center", fontsize=8, zorder=3)
        if k:
            ax.add_patch(FancyArrowPatch((k * 2 - 1.3, 0), (k * 2 - 0.7, 0), arrowstyle="-|>", mutation_scale=12,
                                         color="black", lw=1.2))
    for k, layer in enumerate(arch.layers, start=1):
        for source in layer.skips:
            ax.add_patch(FancyArrowPatch(
                (source * 2, 0.35), (k * 2 - 0.2, 0.35), connectionstyle="arc3,rad=-0.35", arrowstyle="-|>",
                mutation_scale=12, lw=1.2, color="tab:blue", linestyle="-" if layer.merge == "sum" else "--"))
    return _save_drawing(fig, ax, (-1, 2 * (n + 1) + 1), (-0.8, 0.8 + 0.45 * n), str(arch), 7, path)


def _layer_label(layer) -> str:
    lines = [layer.op]
    if layer.kernel:
        lines.append(f"{layer.kernel}x{layer.kernel}" + (f" x{layer.width}" if layer.width else ""))
    if layer.stride == 2:
        lines.append("stride 2")
    return "\n".join(lines)


def genotype_plot(arch: Genotype, path: str | Path) -> Path:
    """The DARTS normal and reduction cells, one above the other, as DARTS's ``visualize.py`` draws them: the two
    cell inputs on the left, nodes 0..3 (DARTS's numbering of nodes 2..5), each edge coloured by its op, and grey
    arrows from the concatenated nodes into the cell output."""
    fig, axes = plt.subplots(2, 1, figsize=(9, 8.4))
    for ax, cell in zip(axes, CELLS):
        pos = {0: (0.0, 1.2), 1: (0.0, -1.2), **{n: (2.0 * (n - 1), 0.9 * (-1) ** n) for n in range(2, 6)}}
        pos[6] = (10.6, 0.0)
        names = {0: "c_{k-2}", 1: "c_{k-1}", **{n: str(n - 2) for n in range(2, 6)}, 6: "c_{k}"}
        for n, (x, y) in pos.items():
            ax.add_patch(plt.Circle((x, y), 0.42, color="lightsteelblue" if 2 <= n <= 5 else "wheat", zorder=3))
            ax.text(x, y, f"${names[n]}$" if n in (0, 1, 6) else names[n], ha="center", va="center", fontsize=10,
                    zorder=4)
        for k, (op, source) in enumerate(getattr(arch, cell)):
            node = 2 + k // 2
            ax.add_patch(FancyArrowPatch(pos[source], pos[node], connectionstyle="arc3,rad=0.15", arrowstyle="-|>",
                                         mutation_scale=13, color=OP_COLORS[op], lw=1.8, shrinkA=16, shrinkB=16,
                                         zorder=2))
            ax.text(*((np.array(pos[source]) + np.array(pos[node])) / 2 + (0, 0.18)), op, ha="center", fontsize=7,
                    color=OP_COLORS[op], bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})
        for node in getattr(arch, f"{cell}_concat"):
            ax.add_patch(FancyArrowPatch(pos[node], pos[6], arrowstyle="-|>", mutation_scale=11, color="lightgray",
                                         lw=1.2, shrinkA=16, shrinkB=16, zorder=1))
        ax.set_xlim(-0.8, 11.4)
        ax.set_ylim(-1.9, 1.9)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"{cell} cell", fontsize=10)
    fig.suptitle(str(arch), fontsize=6, wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def outlined(weights: np.ndarray, kept: Any = None) -> list[tuple[int, int]]:
    """The (edge, op) cells ``alpha_heatmap`` outlines in one panel: those nonzero in ``kept``, else each row's
    strongest."""
    if kept is None:
        return [(row, int(col)) for row, col in enumerate(weights.argmax(1))]
    return [(int(row), int(col)) for row, col in np.argwhere(np.asarray(kept) > 0)]


def alpha_heatmap(alphas: dict[str, np.ndarray], labels: dict[str, tuple[Sequence[str], Sequence[str]]],
                  path: str | Path, title: str, kept: dict[str, Any] | None = None) -> Path:
    """A one-shot search's architecture weights: softmax(α) per edge (rows) and op (columns), one panel per cell
    type (``labels[cell]``: its rows' and columns' names). Outlined: the (edge, op) pairs the derived architecture
    keeps (``kept``: nonzero where it does, the supernet's ``arch_weights`` of it; in the DARTS space two edges per
    node, never ``none``), or without it the strongest op of each edge."""
    rows = max(len(edges) for edges, _ in labels.values())
    columns = max(len(ops) for _, ops in labels.values())
    fig, axes = plt.subplots(1, len(alphas), figsize=(1.5 + 0.75 * columns * len(alphas), 1.8 + 0.32 * rows),
                             squeeze=False)
    for ax, (name, weights) in zip(axes[0], alphas.items()):
        edges, ops = labels[name]
        # the panel's own range: early in a search softmax(α) differs from uniform in the third decimal
        low, high = float(weights.min()), float(weights.max())
        image = ax.imshow(weights, cmap="viridis", vmin=low, vmax=max(high, low + 1e-9), aspect="auto")
        ax.set_xticks(range(len(ops)), ops, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(len(edges)), edges, fontsize=7)
        for row, col in outlined(weights, None if kept is None else kept[name]):
            ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="white", lw=1.5))
        ax.set_title(f"{name}: softmax(α)", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.05)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def oneshot_epochs_plot(epochs: Sequence[int], scores: Sequence[float], parameter_free: Sequence[float],
                        path: str | Path, title: str) -> Path:
    """Per supernet epoch: the derived architecture's weight-sharing score and its share of parameter-free ops (DARTS's
    collapse shows as that share rising)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(epochs, scores, "o-", color="tab:blue", label="derived architecture, val accuracy (weight sharing)")
    ax.set_xlabel("supernet epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("val accuracy", color="tab:blue")
    ax.set_ylim(0, 1)
    other = ax.twinx()
    other.plot(epochs, parameter_free, "s--", color="tab:red", label="parameter-free ops in the derived cell")
    other.set_ylabel("share of parameter-free ops", color="tab:red")
    other.set_ylim(0, 1)
    lines = ax.get_lines() + other.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def architecture_plot(arch: NB201Arch | MacroArch | Genotype, path: str | Path) -> Path:
    """The drawing that suits the architecture's space."""
    if isinstance(arch, Genotype):
        return genotype_plot(arch, path)
    return cell_plot(arch, path) if isinstance(arch, NB201Arch) else layer_plot(arch, path)


def pareto_front_plot(values: Sequence[Sequence[float]], directions: Sequence[str], names: Sequence[str],
                      path: str | Path, *, front: Sequence[int] | np.ndarray | None = None, selected: int | None = None,
                      numbers: Sequence[int] | None = None,
                      infeasible: Sequence[int] | np.ndarray | None = None, title: str = "") -> Path:
    """Every trial of a multi-objective search in objective space: the Pareto front drawn as a step line (the
    boundary of what it dominates), the retrained member starred, trials that break a constraint in grey.

    With two objectives, one panel; with three or more, one panel per pair of objectives, where the front members
    (non-dominated on all objectives) are highlighted without a step line: a projected front is not a staircase.

    Args:
        values: one row per trial, one column per objective, in the objectives' own units and directions.
        directions: ``"maximize"`` / ``"minimize"`` per objective.
        names: the objectives' names (``nas.estimation.objectives.OBJECTIVES`` gives their units).
        path: the PNG to write.
        front: the front members (indices or a boolean mask); default: the non-dominated feasible trials.
        selected: index of the member that is retrained.
        numbers: the trials' numbers, for the labels (default: their indices).
        infeasible: trials that break a constraint (indices or a boolean mask); never on the default front.
        title: the figure's title.

    Returns:
        ``path``.
    """
    values = np.asarray(values, dtype=float).reshape(-1, len(directions))
    n, k = values.shape
    grey = _mask(infeasible, n)
    on_front = _mask(front, n) if front is not None else _feasible_front(values, directions, grey)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7 if k == 2 else 4.6 * cols, 4.4 if k == 2 else 4 * rows),
                             squeeze=False)
    for ax, (i, j) in zip(axes.flat, pairs):
        for rows, style in ((grey, {"color": "lightgray", "label": "infeasible"}),
                            (~grey & ~on_front, {"color": "tab:blue", "alpha": 0.6, "label": "trial"}),
                            (on_front, {"color": "tab:red", "s": 30, "zorder": 3, "label": "Pareto front"})):
            if rows.any():  # an empty group would still take a line in the legend
                ax.scatter(values[rows, i], values[rows, j], **{"s": 18, **style})
        if k == 2 and on_front.any():
            order = np.argsort(values[on_front, i], kind="stable")
            # The staircase turns at each member: along x first when x is minimised, along y first when maximised.
            ax.plot(values[on_front, i][order], values[on_front, j][order], color="tab:red", lw=1.2,
                    drawstyle="steps-post" if directions[i] == "minimize" else "steps-pre")
        if selected is not None:
            ax.scatter([values[selected, i]], [values[selected, j]], marker="*", s=260, color="gold",
                       edgecolors="black", zorder=4,
                       label=f"retrained: trial {selected if numbers is None else numbers[selected]}")
        ax.set_xlabel(_objective_label(names[i], directions[i]))
        ax.set_ylabel(_objective_label(names[j], directions[j]))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(pairs):]:
        ax.axis("off")
    if n:
        axes.flat[0].legend(loc="best", fontsize=8)
    fig.suptitle(title or f"Pareto front: {on_front.sum()} of {n} trials")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def hypervolume_plot(history: Sequence[float], path: str | Path, *, reference: Sequence[float] | None = None,
                     optimum: float | None = None, numbers: Sequence[int] | None = None, title: str = "") -> Path:
    """Hypervolume of the front found after each trial (``nas.search.pareto.hypervolume_history``), with the
    reference point it was measured from and, when known, the true front's hypervolume as a dashed line.
    ``numbers``: each value's trial number (a search's pruned trials have none), by default 1, 2, ..."""
    fig, ax = plt.subplots(figsize=(7, 4))
    trials = np.arange(1, len(history) + 1) if numbers is None else np.asarray(numbers)
    label = (f"found front ({history[-1]:.4g} after trial {trials[-1]})" if len(history) else "found front")
    ax.plot(trials, history, drawstyle="steps-post", color="tab:blue", lw=1.5, label=label)
    if optimum is not None:
        ax.axhline(optimum, color="black", ls="--", lw=1, label=f"true front ({optimum:.4g})")
    ax.set_xlabel("trials" if numbers is None else "trial number")
    ax.set_ylabel("hypervolume")
    where = f"reference point {tuple(round(float(r), 6) for r in reference)}" if reference is not None else ""
    ax.set_title((title or "Hypervolume of the front, trial by trial") + (f"\n{where}" if where else ""), fontsize=10)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def _feasible_front(values: np.ndarray, directions: Sequence[str], infeasible: np.ndarray) -> np.ndarray:
    """The non-dominated rows among the feasible ones (Optuna's constrained studies rank infeasible trials last)."""
    mask = np.zeros(len(values), dtype=bool)
    feasible = np.flatnonzero(~infeasible)
    mask[feasible] = front_mask(costs(values[feasible], directions))
    return mask


def _mask(rows: Sequence[int] | np.ndarray | None, n: int) -> np.ndarray:
    """A boolean mask of ``n`` rows from a mask or a list of row indices (None: no row)."""
    rows = np.asarray([] if rows is None else rows)
    if rows.dtype == bool:
        return rows.copy()
    mask = np.zeros(n, dtype=bool)
    mask[rows.astype(int)] = True
    return mask


def _objective_label(name: str, direction: str) -> str:
    unit = OBJECTIVES[name].unit if name in OBJECTIVES else ""
    return f"{name}" + (f" [{unit}]" if unit else "") + (" (higher is better)" if direction == "maximize"
                                                          else " (lower is better)")
