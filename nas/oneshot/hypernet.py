"""SMASH (Brock, Lim, Ritchie & Weston, "SMASH: One-Shot Model Architecture Search through HyperNetworks", ICLR
2018), with the weight generator of HyperNetworks (Ha, Dai & Le, ICLR 2017).

The one idea: an auxiliary network maps an architecture's encoding to the weights of that architecture's network,
so that after training it any candidate can be scored without training: its validation accuracy with generated
weights ranks it. Training samples a random architecture per minibatch, generates its weights and backpropagates
the training loss into the hypernetwork (SMASH's ``train_fn``).

What is implemented, a simplification of SMASH (its memory-bank network and 3D embedding are out of scope): the
network is the space's supernet (NB201's or DARTS's cell, ``nas.oneshot``), run on the candidate's path only (hard
forward, as the single-path methods). Every convolution of every candidate op of a cell has its weight generated::

    W_p(arch) = W0_p + sum_r z_p(arch)[r] * B_p[r],        z(arch) = MLP(space.features(arch))

with W0_p (the supernet's own weight) and the rank-R basis B_p learned per convolution, and z a two-layer MLP (ReLU,
``hidden`` units) of the architecture's one-hot encoding, R coefficients per convolution. Per convolution this is
Ha et al.'s embedding-to-weights map (a linear map of a layer embedding, plus a bias), its embedding made a
function of the architecture, as SMASH's is of its encoding; so different architectures get different weights for
the same op. The stem, the reduction blocks and the classifier are ordinary shared weights, as SMASH learns its
stem, transitions and output layer freely (and even its 3x3 convolutions: only its 1x1s are generated).

Training is SMASH's: Adam (lr 1e-3, betas (0.5, 0.999), eps 1e-4), weight decay 1e-4 on everything but the
generator (the MLP and the bases), no gradient clipping, cosine learning rate to 0. Deviations: the cosine is
stepped per epoch (SMASH's per iteration); SMASH's architectures are drawn from its own sampler of widths, paths
and kernels, ours uniformly from the space (``space.sample``); SMASH scores candidates in eval mode with the
statistics training left and uses no BatchNorm in its ops by default, while this supernet has BatchNorm in every
op, so ``HypernetEstimator`` recalibrates it per candidate, as SPOS (``nas.estimation.weight_sharing``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from nas.data import Split
from nas.estimation.weight_sharing import WeightSharingEstimator
from nas.oneshot.base import SUPERNETS, OneShotConfig
from nas.oneshot.single_path import WeightSharingSearch, path_weights
from nas.spaces import SPACES, NetworkConfig


class HyperNet(nn.Module):
    """The supernet with generated convolution weights: ``forward(x, arch)``.

    Args:
        space: ``nb201`` or ``darts``.
        rank: R, basis tensors per convolution.
        hidden: width of the MLP's hidden layer.
    """

    def __init__(self, space: str, network: NetworkConfig, rank: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.supernet = SUPERNETS[space](network)
        self.features: Callable[[Hashable], np.ndarray] = SPACES[space].features
        n_features = len(self.features(SPACES[space].sample(np.random.default_rng(0))))
        cell_types = list(self.supernet.alpha_shapes)
        # Every conv of every candidate op, as (parameter name, cell type, edge, op).
        self.targets: list[tuple[str, str, int, int]] = []
        for c, cell in enumerate(self.supernet.cells):
            if not hasattr(cell, "edges"):  # NB201's reduction blocks
                continue
            kind = cell_types[0] if len(cell_types) == 1 else ("reduce" if cell.reduction else "normal")
            for k, mixed in enumerate(cell.edges):
                for j, op in enumerate(mixed.ops):
                    self.targets += [(f"cells.{c}.edges.{k}.ops.{j}.{name}.weight", kind, k, j)
                                     for name, m in op.named_modules() if isinstance(m, nn.Conv2d)]
        self.rank = rank
        # At initialisation the part that varies with the architecture has about a tenth of the weights' spread
        # (measured: 0.05 to 0.15 per convolution, NB201 and DARTS at C=8).
        self.bases = nn.ParameterList(
            nn.Parameter(torch.randn(rank, *w.shape) * w.detach().std() / math.sqrt(rank))
            for w in (self.supernet.get_parameter(name) for name, *_ in self.targets))
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, len(self.targets) * rank))

    def generate(self, arch: Hashable) -> dict[str, torch.Tensor]:
        """The generated weight of every convolution on ``arch``'s path, by parameter name."""
        device = self.bases[0].device
        features = torch.as_tensor(self.features(arch), device=device)
        z = self.mlp(features).view(len(self.targets), self.rank)
        _, index = path_weights(self.supernet, arch, device)
        return {name: self.supernet.get_parameter(name) + torch.tensordot(z[t], self.bases[t], dims=1)
                for t, (name, kind, edge, op) in enumerate(self.targets) if index[kind][edge] == op}

    def forward(self, x: torch.Tensor, arch: Hashable, weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits of ``arch`` with its generated weights (``weights``: ``generate(arch)``'s, to reuse them)."""
        weights = self.generate(arch) if weights is None else weights
        return functional_call(self.supernet, weights, (x, *path_weights(self.supernet, arch, x.device)))


class HypernetEstimator(WeightSharingEstimator):
    """``estimate(arch) -> Result`` with weights generated once per candidate (SMASH's ``evaluate.py``), then
    evaluated as every weight-sharing candidate is (BatchNorm recalibrated by default)."""

    def _network(self, arch: Hashable) -> Callable[[torch.Tensor], torch.Tensor]:
        weights = {name: w.detach() for name, w in self.model.generate(arch).items()}
        return lambda x: self.model(x, arch, weights)


class Smash(WeightSharingSearch):
    """Args (beyond ``WeightSharingSearch``'s; of ``config`` only ``epochs``, ``batch_size`` and
    ``eval_batch_size`` are read):
        lr: Adam's initial learning rate.
        weight_decay: on the supernet's own weights (W0 and the shared layers); the generator (MLP and bases) has
            none, as SMASH's.
        rank, hidden: the hypernetwork's (``HyperNet``).
    """

    method = "smash"
    default_bn = "recalibrate"

    def __init__(self, space: str, network: NetworkConfig, config: OneShotConfig, seed: int, device: str = "cpu",
                 lr: float = 1e-3, weight_decay: float = 1e-4, rank: int = 8, hidden: int = 64) -> None:
        if lr <= 0 or weight_decay < 0 or rank < 1 or hidden < 1:
            raise ValueError("Smash: need lr > 0, weight_decay >= 0, rank >= 1 and hidden >= 1")
        self._settings = {"lr": lr, "weight_decay": weight_decay, "rank": rank, "hidden": hidden}
        super().__init__(space, network, config, seed, device)

    def options(self) -> dict[str, Any]:
        return dict(self._settings)

    def _build(self) -> nn.Module:
        return HyperNet(self.space, self.network, self._settings["rank"], self._settings["hidden"])

    def _make_optimizer(self) -> torch.optim.Optimizer:
        generator = [*self.model.mlp.parameters(), *self.model.bases]
        groups = [{"params": list(self.model.supernet.parameters())}, {"params": generator, "weight_decay": 0.0}]
        return torch.optim.Adam(groups, lr=self._settings["lr"], betas=(0.5, 0.999), eps=1e-4,
                                weight_decay=self._settings["weight_decay"])

    def lr(self, epoch: int) -> float:
        return self._settings["lr"] * (1 + math.cos(math.pi * epoch / self.config.epochs)) / 2

    def _grad_clip(self) -> float | None:
        return None  # SMASH clips nothing

    def estimator(self, train: Split, val: Split, bn: str | None = None, bn_batches: int = 20) -> HypernetEstimator:
        return HypernetEstimator(self.model, self.arch_space, self.network, train, val, bn or self.default_bn,
                                 bn_batches, self.config.batch_size, self.config.eval_batch_size, self.seed,
                                 self.device)
