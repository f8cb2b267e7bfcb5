"""The DARTS evaluation network (Liu et al. 2019, ``cnn/model.py`` ``NetworkCIFAR``), built from a ``Genotype``.

A 3x3 conv stem at 3C channels, then ``3N + 2`` cells for ``cells_per_stage`` N: reduction cells (stride 2, double
channels) at 1/3 and 2/3 of the depth, each cell reading the two previous cells' outputs. Global average pooling
and a linear classifier. DARTS's CIFAR-10 network is C = 36 with 20 cells (N = 6).

Retraining extras, as DARTS's ``train.py``: an auxiliary classifier after the second reduction (``auxiliary``;
``aux_logits`` holds its output after a training-mode forward, for the loss), and drop-path on every non-identity
edge with probability ``drop_path_prob``, an attribute the training loop may raise over the epochs (its masks from
``drop_path_generator``, the loop's seeded generator). DARTS's
auxiliary head pools a 8x8 map (32x32 images) with a 5x5 window at stride 3; other sizes are pooled to the same 2x2
adaptively, which changes no parameter.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas.spaces.darts.arch import Genotype
from nas.spaces.nb201 import NetworkConfig
from nas.spaces.ops import OPS, FactorizedReduce, ReLUConvBN


def drop_path(x: torch.Tensor, drop_prob: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero whole samples of an edge's output with probability ``drop_prob``, scaling the rest (DARTS's utils). The
    mask is drawn on the CPU from ``generator`` (the training loop's seeded one), so a run is reproducible."""
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], 1, 1, 1).bernoulli_(keep, generator=generator).to(x.device, x.dtype)
    return x / keep * mask


class DartsCell(nn.Module):
    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, c: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.preprocess0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = genotype.reduce_concat if reduction else genotype.normal_concat
        self.indices = [source for _, source in edges]
        # Only edges from the cell inputs are strided in a reduction cell.
        self.ops = nn.ModuleList(OPS[op](c, c, 2 if reduction and source < 2 else 1) for op, source in edges)
        self.multiplier = len(self.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(0, len(self.ops), 2):
            total = 0
            for op, source in ((self.ops[k], self.indices[k]), (self.ops[k + 1], self.indices[k + 1])):
                h = op(states[source])
                if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob, generator)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    def __init__(self, c: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        x = (F.avg_pool2d(x, 5, stride=3, count_include_pad=False) if x.shape[-2:] == (8, 8)
             else F.adaptive_avg_pool2d(x, 2))
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    training_only = ("auxiliary_head",)  # not part of the deployed network (nas.estimation.cost.count_params)

    def __init__(self, genotype: Genotype, config: NetworkConfig, auxiliary: bool = False) -> None:
        super().__init__()
        c, layers = config.channels, 3 * config.cells_per_stage + 2
        self.reductions = (layers // 3, 2 * layers // 3)
        self.drop_path_prob = 0.0
        self.drop_path_generator: torch.Generator | None = None  # the training loop's, when it sets drop_path_prob
        self.aux_logits: torch.Tensor | None = None
        c_curr = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_prev_prev, c_prev, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = i in self.reductions
            c_curr *= 2 if reduction else 1
            cell = DartsCell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if i == self.reductions[1]:
                c_auxiliary = c_prev
        self.auxiliary_head = AuxiliaryHead(c_auxiliary, config.num_classes) if auxiliary else None
        self.classifier = nn.Linear(c_prev, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        self.aux_logits = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob, self.drop_path_generator)
            if i == self.reductions[1] and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))
