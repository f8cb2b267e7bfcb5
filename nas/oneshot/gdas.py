"""GDAS (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours", CVPR 2019).

The one idea: sample one op per edge instead of mixing all of them. Each forward draws a Gumbel-max sample from
softmax(α), runs only the sampled op of every edge (a hard one-hot forward) and backpropagates through the Gumbel-
softmax relaxation by the straight-through trick, h = one_hot − stop_grad(p) + p with p = softmax((log softmax(α) +
g) / τ), so a step costs one sub-network and α still gets a gradient on every op. τ falls linearly from 10 to 0.1
over the epochs; a sample with an infinite or NaN entry is drawn again. As NB201's ``GDAS.py``, each step updates w
on a train batch, then α on a val batch, each forward with its own sample, shared by every cell of a type.

Deviations: the optimisers are the shared DARTS ones, as the paper's CIFAR search (NB201's GDAS config uses
Nesterov momentum, weight decay 5e-4 and a per-iteration cosine); in the DARTS space both cells are searched (the
paper's headline GDAS fixes the reduction cell), and the hard forward adds the unsampled ops' weights as NB201's
cells do, where the reference's DARTS-space mixed op returns only the sampled term (the forward is the same, as
those weights are 0; α's gradient differs; not measured).
"""

from __future__ import annotations

import torch

from nas.oneshot.base import OneShotSearch, frozen_bn_stats, gumbel_softmax
from nas.strategy_registry import TAU_DEFAULTS


class Gdas(OneShotSearch):
    method = "gdas"
    tau_defaults = TAU_DEFAULTS["gdas"]

    def _sample(self, tau: float, detach: bool) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
        """Straight-through one-hot weights and the sampled op of every edge, per cell type."""
        weights, index = {}, {}
        for name, alpha in self.alpha.items():
            probs = gumbel_softmax(alpha.detach() if detach else alpha, tau, self.noise_generator)
            chosen = probs.argmax(-1)
            weights[name] = torch.zeros_like(probs).scatter_(-1, chosen[:, None], 1.0) - probs.detach() + probs
            index[name] = chosen.tolist()
        return weights, index

    def _step(self, x, y, val_x, val_y, lr, tau):
        loss = self._weight_step(x, y, *self._sample(tau, detach=True))
        with frozen_bn_stats(self.supernet):
            weights, index = self._sample(tau, detach=False)
            self._alpha_step(torch.autograd.grad(self._loss(val_x, val_y, weights, index), list(self.alpha.values())))
        return loss

    _eval_weights = OneShotSearch._argmax_weights
