"""Plots people would rather look at than tables: search progress and the found cell."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch  # noqa: E402

from nas.spaces.nb201 import EDGES, NB201Arch  # noqa: E402

OP_COLORS = {
    "skip_connect": "tab:gray",
    "nor_conv_1x1": "tab:blue",
    "nor_conv_3x3": "tab:red",
    "avg_pool_3x3": "tab:green",
}


def search_progress_plot(numbers: Sequence[int], scores: Sequence[float], path: str | Path, title: str) -> Path:
    """Each trial's val accuracy and the best so far, against trial number."""
    best, running = [], float("-inf")
    for s in scores:
        running = max(running, s)
        best.append(running)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(numbers, scores, s=14, alpha=0.6, label="trial")
    ax.step(numbers, best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.legend(loc="lower right")
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
    ax.set_xlim(-0.6, 6.6)
    ax.set_ylim(-1.4, 2.0)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(str(arch), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
