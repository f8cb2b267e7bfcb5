"""SNAS (Xie, Zheng, Liu & Lin, "SNAS: Stochastic Neural Architecture Search", ICLR 2019).

The one idea: treat the architecture as a distribution and optimise the expected training loss E_Z~p_α[L(Z, w)]
directly. Each step draws a relaxed one-hot Z = softmax((log α + g) / τ) per edge (the concrete / Gumbel-softmax
distribution; all ops run, weighted by Z), and w and α descend the same training-batch loss together: no bilevel
split, the gradient reaching α is a per-edge credit assignment. The val split only gives the metrics.

Temperature: linear from 1 to 0.03 over the epochs, the official code's ``Temp_Scheduler`` (``--temp 1 --temp_min
0.03 --temp_annealing``), except that it spreads the fall over a hard-coded 150 epochs and this over
``config.epochs``, reaching 0.03 at the last one.

Deviations from the paper and its code: the resource constraint (the FLOPs / parameters / memory-access penalty) is
omitted, so this is SNAS without it; no drop-path (the official search drops paths at 0.3); α starts at
1e-3 * randn as DARTS (the official code draws log α from N(1, 0.01): the shift is invisible to softmax, only the
spread differs) and is trained by the shared Adam (the official multi-GPU script's, its single-GPU one uses plain
SGD at 3e-4); one sample per forward serves every cell of a type (the code's default); w and α learn from the train
split and the val split only scores (the official ``train_search.py`` trains on the whole CIFAR-10 training set and
reports on the test set). The derived cell: on NB201 the argmax of each edge, ``none`` included, as SNAS's rule; on
the DARTS space DARTS's rule (per node the two inputs of strongest non-``none`` op), since a DARTS genotype has two
inputs per node, where SNAS keeps every edge whose argmax is not ``none`` (``genotype_edge_all``).
"""

from __future__ import annotations

from nas.oneshot.base import OneShotSearch, gumbel_softmax
from nas.strategy_registry import TAU_DEFAULTS


class Snas(OneShotSearch):
    method = "snas"
    tau_defaults = TAU_DEFAULTS["snas"]

    def _step(self, x, y, val_x, val_y, lr, tau):
        weights = {name: gumbel_softmax(alpha, tau, self.noise_generator) for name, alpha in self.alpha.items()}
        self.a_optimizer.zero_grad(set_to_none=True)
        loss = self._weight_step(x, y, weights)  # one backward fills both gradients
        self.a_optimizer.step()
        return loss

    _eval_weights = OneShotSearch._argmax_weights
