"""Operation registry shared by the cell spaces: ``OPS[name](C_in, C_out, stride) -> nn.Module``.

The NAS-Bench-201 operations follow the benchmark's reference code (Dong & Yang 2020, ``xautodl/models/cell_operations.py``):
convolutions are ReLU-Conv-BN, pooling projects with a 1x1 ReLU-Conv-BN when channels change.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` op: contributes nothing, keeps the shape the edge would have."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_out, self.stride = c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        if x.shape[1] == self.c_out:
            return x.mul(0.0)
        shape = (x.shape[0], self.c_out, *x.shape[2:])
        return x.new_zeros(shape)


class Pool(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.project = ReLUConvBN(c_in, c_out, 1, 1, 0) if c_in != c_out else nn.Identity()
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.project(x))


def _skip(c_in: int, c_out: int, stride: int) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return ReLUConvBN(c_in, c_out, 1, stride, 0)


OPS: dict[str, Callable[[int, int, int], nn.Module]] = {
    "none": Zero,
    "skip_connect": _skip,
    "nor_conv_1x1": lambda c_in, c_out, stride: ReLUConvBN(c_in, c_out, 1, stride, 0),
    "nor_conv_3x3": lambda c_in, c_out, stride: ReLUConvBN(c_in, c_out, 3, stride, 1),
    "avg_pool_3x3": Pool,
}
