"""The mixed operation of a supernet edge: every candidate operation of the shared registry, combined by weights.

Two ways to combine (the forward's ``index``):

* dense, ``index=None``: ``sum_k w_k * op_k(x)``, the continuous relaxation of DARTS (Liu et al. 2019, eq. 1) and the
  relaxed Gumbel-softmax sample of SNAS (Xie et al. 2019);
* hard, ``index=k``: GDAS's (Dong & Yang 2019) one-hot forward, ``w_k * op_k(x) + sum_{j != k} w_j``. Only the
  chosen op runs; the other weights are zero in value but still carry the straight-through gradient to α (NB201's
  ``NAS201SearchCell.forward_gdas``).

Every op's BatchNorm is ``affine=False``, as in both papers' supernets. DARTS appends a BatchNorm (``affine=False``)
to its pooling ops inside the mixed op (``pool_bn=True``); the NAS-Bench-201 search cells do not.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.spaces.ops import OPS


class MixedOp(nn.Module):
    """Args:
        op_names: the candidates, in the order of the edge's weights.
        channels: input and output channels.
        stride: the edge's stride (2 for the input edges of a DARTS reduction cell).
        pool_bn: append ``BatchNorm2d(channels, affine=False)`` to pooling ops (DARTS's ``MixedOp``).
    """

    def __init__(self, op_names: Sequence[str], channels: int, stride: int, pool_bn: bool = False) -> None:
        super().__init__()
        ops = []
        for name in op_names:
            op = OPS[name](channels, channels, stride, affine=False)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(channels, affine=False))
            ops.append(op)
        self.ops = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, index: int | None = None) -> torch.Tensor:
        """``weights``: this edge's row, one weight per op; ``index``: the sampled op (hard forward) or None."""
        if index is None:
            return sum(w * op(x) for w, op in zip(weights, self.ops))
        return sum(weights[k] * op(x) if k == index else weights[k] for k, op in enumerate(self.ops))
