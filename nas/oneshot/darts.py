"""DARTS (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019).

The one idea: relax the choice of op on an edge to a softmax over all of them, so the architecture α is continuous,
and solve the bilevel problem min_α L_val(w*(α), α), w*(α) = argmin_w L_train(w, α), by alternating gradient steps
(Algorithm 1): each step first moves α on a val batch, then w on a train batch with the new α.

* ``darts`` (first order): ∇α L_val(w, α), taking w*(α) ≈ w.
* ``darts2`` (second order): ∇α L_val(w', α) for one unrolled weight step w' = w − ξ ∇w L_train(w, α), ξ the
  current learning rate of w, which is (eq. 7) ∇α L_val(w', α) − ξ ∇²α,w L_train(w, α) ∇w' L_val(w', α), the
  Hessian-vector product by central differences (eq. 8): (∇α L_train(w⁺, α) − ∇α L_train(w⁻, α)) / 2ε with
  w± = w ± ε ∇w' L_val(w', α) and ε = 0.01 / ‖∇w' L_val(w', α)‖.

As DARTS's ``architect.py``, the unrolled step is the weight optimiser's own (momentum buffer and weight decay
included, no clipping): w' = w − ξ (μ m + ∇w L_train + λ w). Those two terms do not depend on α, so eq. 7 holds
unchanged. The weight step clips the gradient norm at 5 (``train_search.py``).

A property of the method, measured here (float64, NB201 supernet C=16, batch 64, 16x16 inputs, ξ = 0.025): with
ReLUs the ε of eq. 8 makes some units cross their kink, and the difference then measures those crossings rather than
the Hessian: the r = 0.01 estimate was off by up to 0.016 while the second-order term itself was at most 0.0018
(smaller r did not help). With the ReLUs made smooth (GELU) the same code matched the exact hypergradient to 5e-7.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from nas.oneshot.base import OneShotSearch, frozen_bn_stats


def unrolled_alpha_grads(net: nn.Module, alphas: dict[str, torch.Tensor],
                         train_batch: tuple[torch.Tensor, torch.Tensor], val_batch: tuple[torch.Tensor, torch.Tensor],
                         eta: float, momentum_buffers: list[torch.Tensor | None], momentum: float,
                         weight_decay: float, r: float = 0.01) -> list[torch.Tensor]:
    """DARTS's second-order gradient of L_val(w', α) with respect to every α (eq. 7 and 8).

    Args:
        net: the supernet, ``net(x, weights)`` with ``weights`` the softmax of each α; w is its parameters.
        momentum_buffers: the weight optimiser's buffer for each of ``net.parameters()`` (None where it has none).
        eta: ξ, the step of the unrolled update.

    Returns one gradient per α, in ``alphas`` order. BatchNorm statistics update as in any forward.
    """
    names, params = zip(*net.named_parameters())
    alpha_list = list(alphas.values())

    def loss(weights: list[torch.Tensor], batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        mix = {name: a.softmax(-1) for name, a in alphas.items()}
        return F.cross_entropy(functional_call(net, dict(zip(names, weights)), (batch[0], mix)), batch[1])

    train_grads = torch.autograd.grad(loss(list(params), train_batch), params)
    unrolled = [(p - eta * (g + weight_decay * p + (0.0 if m is None else momentum * m))).detach().requires_grad_()
                for p, g, m in zip(params, train_grads, momentum_buffers)]
    grads = torch.autograd.grad(loss(unrolled, val_batch), alpha_list + unrolled)
    d_alpha, vector = grads[:len(alpha_list)], grads[len(alpha_list):]
    eps = r / torch.cat([v.flatten() for v in vector]).norm()
    plus = torch.autograd.grad(loss([p.detach() + eps * v for p, v in zip(params, vector)], train_batch), alpha_list)
    minus = torch.autograd.grad(loss([p.detach() - eps * v for p, v in zip(params, vector)], train_batch), alpha_list)
    return [d - eta * (gp - gm) / (2 * eps) for d, gp, gm in zip(d_alpha, plus, minus)]


class DartsFirstOrder(OneShotSearch):
    method = "darts"
    second_order = False

    def _step(self, x, y, val_x, val_y, lr, tau):
        with frozen_bn_stats(self.supernet):
            if self.second_order:
                buffers = [self.w_optimizer.state.get(p, {}).get("momentum_buffer") for p in self.supernet.parameters()]
                grads = unrolled_alpha_grads(self.supernet, self.alpha, (x, y), (val_x, val_y), lr, buffers,
                                             self.config.momentum, self.config.w_weight_decay, self.config.unroll_r)
            else:
                grads = torch.autograd.grad(self._loss(val_x, val_y, self._softmax()), list(self.alpha.values()))
        self._alpha_step(grads)
        return self._weight_step(x, y, self._softmax(detach=True))


class DartsSecondOrder(DartsFirstOrder):
    method = "darts2"
    second_order = True
