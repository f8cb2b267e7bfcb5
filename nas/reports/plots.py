"""Plots people would rather look at than tables: search progress, the trials and the found architecture."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402
from optuna.visualization.matplotlib import plot_optimization_history  # noqa: E402

from nas.spaces.macro import MacroArch  # noqa: E402
from nas.spaces.nb201 import EDGES, NB201Arch  # noqa: E402

OP_COLORS = {
    "skip_connect": "tab:gray",
    "nor_conv_1x1": "tab:blue",
    "nor_conv_3x3": "tab:red",
    "avg_pool_3x3": "tab:green",
}


def search_progress_plot(study: optuna.Study, path: str | Path, title: str) -> Path:
    """Optuna's optimization history: each completed trial's val accuracy and the best so far, against trial number
    (the first objective of a multi-objective study)."""
    target = None if len(study.directions) == 1 else (lambda trial: trial.values[0])
    # Optuna's plot switches matplotlib to its ggplot style for good; rc_context puts the old style back.
    with plt.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plot_optimization_history(study, target=target, target_name="validation accuracy")
        ax.set_title(title)
        ax.legend(loc="best")  # Optuna's sits outside the axes, leaving them half the figure
        fig = ax.figure
        fig.set_size_inches(7, 4)
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


def architecture_plot(arch: NB201Arch | MacroArch, path: str | Path) -> Path:
    """The drawing that suits the architecture's space."""
    return cell_plot(arch, path) if isinstance(arch, NB201Arch) else layer_plot(arch, path)
