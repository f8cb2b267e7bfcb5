"""The DARTS supernet (Liu, Simonyan & Yang, ICLR 2019; ``cnn/model_search.py`` ``Network``) and DARTS's rule for
reading a cell out of α (``genotype()._parse``).

A 3x3 conv stem at 3C channels, then ``layers = 3N + 2`` cells for ``cells_per_stage`` N, the ones at ``layers // 3``
and ``2 * layers // 3`` reduction cells (stride-2 input edges, channels doubled). A cell preprocesses its two inputs
(the two previous cells' outputs) to C channels, computes 4 nodes, each the sum of mixed ops on every earlier node
(14 edges), and concatenates the 4 nodes. Normal and reduction cells have their own α, each (14 edges, 8 ops) in
DARTS's ``PRIMITIVES`` order; edge ``k`` of node ``i`` runs from earlier node ``j`` at ``k = i(i+3)/2 + j``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from nas.oneshot.mixed import MixedOp
from nas.spaces.darts.arch import PRIMITIVES, STEPS, Genotype
from nas.spaces.nb201 import NetworkConfig
from nas.spaces.ops import FactorizedReduce, ReLUConvBN

Weights = dict[str, torch.Tensor]
Indices = dict[str, list[int]] | None
EDGES_PER_CELL = sum(2 + i for i in range(STEPS))
CONCAT = list(range(2, 2 + STEPS))


def _parse(weights: np.ndarray) -> list[tuple[str, int]]:
    """Per node, the two inputs whose strongest non-``none`` op weighs most, each with that op (ties: the earlier
    input, the earlier op, as DARTS's stable sort and strict comparison)."""
    live = [k for k, op in enumerate(PRIMITIVES) if op != "none"]
    gene, start = [], 0
    for i in range(STEPS):
        rows = weights[start:start + i + 2]
        inputs = sorted(range(i + 2), key=lambda j: -max(rows[j][k] for k in live))[:2]
        gene += [(PRIMITIVES[max(live, key=lambda k: rows[j][k])], j) for j in inputs]
        start += i + 2
    return gene


def derive(normal: torch.Tensor | np.ndarray, reduce: torch.Tensor | np.ndarray) -> Genotype:
    """DARTS's discrete cell pair from α (softmax taken per edge, as ``genotype()``); outputs concatenate nodes 2..5."""
    def probs(alpha):
        alpha = torch.as_tensor(alpha).detach()
        return np.asarray((alpha if alpha.is_floating_point() else alpha.double()).softmax(-1).cpu())

    return Genotype(normal=_parse(probs(normal)), normal_concat=CONCAT, reduce=_parse(probs(reduce)),
                    reduce_concat=CONCAT)


class SearchCell(nn.Module):
    def __init__(self, c_prev_prev: int, c_prev: int, c: int, reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(c_prev_prev, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_prev_prev, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(MixedOp(PRIMITIVES, c, 2 if reduction and j < 2 else 1, pool_bn=True)
                                   for i in range(STEPS) for j in range(2 + i))

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor,
                index: list[int] | None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(STEPS):
            states.append(sum(self.edges[offset + j](h, weights[offset + j], None if index is None else index[offset + j])
                              for j, h in enumerate(states)))
            offset += len(states) - 1
        return torch.cat(states[2:], dim=1)


class DartsSupernet(nn.Module):
    """``forward(x, weights, index)``: ``weights["normal"]`` and ``weights["reduce"]`` are (14, 8); ``index``, when
    given, the sampled op of each edge per cell type (hard forward)."""

    alpha_shapes: ClassVar[dict[str, tuple[int, int]]] = {"normal": (EDGES_PER_CELL, len(PRIMITIVES)), "reduce": (EDGES_PER_CELL, len(PRIMITIVES))}

    def __init__(self, config: NetworkConfig, stem_multiplier: int = 3) -> None:
        super().__init__()
        c, layers = config.channels, 3 * config.cells_per_stage + 2
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            c_curr *= 2 if reduction else 1
            self.cells.append(SearchCell(c_prev_prev, c_prev, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, STEPS * c_curr
        self.classifier = nn.Linear(c_prev, config.num_classes)

    def forward(self, x: torch.Tensor, weights: Weights, index: Indices = None) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            kind = "reduce" if cell.reduction else "normal"
            s0, s1 = s1, cell(s0, s1, weights[kind], None if index is None else index[kind])
        return self.classifier(s1.mean((2, 3)))

    def derive(self, alphas: Weights) -> Genotype:
        return derive(alphas["normal"], alphas["reduce"])

    @staticmethod
    def labels() -> dict[str, tuple[list[str], tuple[str, ...]]]:
        """Per α matrix, its rows (edges ``i->j`` in DARTS's order: node by node, inputs in order) and columns."""
        edges = [f"{i}->{2 + n}" for n in range(STEPS) for i in range(2 + n)]
        return {"normal": (edges, PRIMITIVES), "reduce": (edges, PRIMITIVES)}

    @staticmethod
    def arch_weights(arch: Genotype) -> Weights:
        """The edge weights that select exactly ``arch``: one-hot on each chosen edge's op, zero on the edges the
        cell does not use."""
        out = {}
        for cell in ("normal", "reduce"):
            weights = torch.zeros(EDGES_PER_CELL, len(PRIMITIVES))
            for k, (op, source) in enumerate(getattr(arch, cell)):
                weights[sum(2 + n for n in range(k // 2)) + source, PRIMITIVES.index(op)] = 1.0
            out[cell] = weights
        return out
