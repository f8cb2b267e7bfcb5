"""The NAS-Bench-201 supernet (Dong & Yang, ICLR 2020; ``TinyNetworkDarts`` / ``TinyNetworkGDAS`` of their
reference code): the benchmark's macro skeleton with every edge of every cell a mixed op over the five operations.

A 3x3 conv stem at C channels, three stages of N search cells at C, 2C and 4C joined by the benchmark's residual
reduction blocks, then BN-ReLU, global average pooling and a linear classifier. All cells share one architecture:
α has one row per edge (``EDGES`` order, the benchmark string's) and one column per op (``OP_NAMES`` order).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nas.oneshot.mixed import MixedOp
from nas.spaces.nb201 import EDGES, OP_NAMES, NB201Arch, NetworkConfig, ResidualReduction

Weights = dict[str, torch.Tensor]
Indices = dict[str, list[int]] | None


def derive(alpha: torch.Tensor | np.ndarray) -> NB201Arch:
    """The strongest op of every edge, ``none`` included (the reference's ``genotype()``)."""
    best = np.asarray(torch.as_tensor(alpha).detach().cpu()).argmax(-1)
    return NB201Arch(tuple(OP_NAMES[int(k)] for k in best))


class SearchCell(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(MixedOp(OP_NAMES, channels, 1) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: list[int] | None) -> torch.Tensor:
        nodes = [x]
        for j in (1, 2, 3):
            nodes.append(sum(self.edges[k](nodes[i], weights[k], None if index is None else index[k])
                             for k, (to, i) in enumerate(EDGES) if to == j))
        return nodes[3]


class NB201Supernet(nn.Module):
    """``forward(x, weights, index)``: ``weights["cell"]`` is (6, 5), the edges' op weights; ``index["cell"]``, when
    given, the sampled op of each edge (hard forward)."""

    alpha_shapes: ClassVar[dict[str, tuple[int, int]]] = {"cell": (len(EDGES), len(OP_NAMES))}

    def __init__(self, config: NetworkConfig) -> None:
        super().__init__()
        c, n = config.channels, config.cells_per_stage
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.cells = nn.ModuleList()
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage:
                self.cells.append(ResidualReduction(width // 2, width))
            self.cells.extend(SearchCell(width) for _ in range(n))
        self.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(4 * c, config.num_classes)

    def forward(self, x: torch.Tensor, weights: Weights, index: Indices = None) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x, weights["cell"], None if index is None else index["cell"]) if isinstance(cell, SearchCell) \
                else cell(x)
        return self.classifier(self.lastact(x).mean((2, 3)))

    def derive(self, alphas: Weights) -> NB201Arch:
        return derive(alphas["cell"])

    @staticmethod
    def labels() -> dict[str, tuple[list[str], tuple[str, ...]]]:
        """Per α matrix, its rows (edges ``i->j``) and columns (ops)."""
        return {"cell": ([f"{i}->{j}" for j, i in EDGES], OP_NAMES)}

    @staticmethod
    def arch_weights(arch: NB201Arch) -> Weights:
        """The edge weights that select exactly ``arch``: one-hot on each edge's op."""
        weights = torch.zeros(len(EDGES), len(OP_NAMES))
        weights[range(len(EDGES)), [OP_NAMES.index(op) for op in arch.ops]] = 1.0
        return {"cell": weights}
