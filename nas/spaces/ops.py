"""Operation registry shared by the cell spaces: ``OPS[name](C_in, C_out, stride, affine=True) -> nn.Module``.

The NAS-Bench-201 operations follow the benchmark's reference code (Dong & Yang 2020, ``xautodl/models/cell_operations.py``):
convolutions are ReLU-Conv-BN, pooling projects with a 1x1 ReLU-Conv-BN when channels change. The DARTS operations
follow DARTS's (Liu et al. 2019, ``cnn/operations.py``): a separable convolution is two stacked ReLU-depthwise-
pointwise-BN blocks, a dilated one a single dilation-2 block, and a strided skip is a factorized reduction.
``affine=False`` gives the BatchNorm without learnable scale and shift that both papers' supernets use.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, a depthwise (dilated) convolution, a pointwise one, BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, dilation: int,
                 affine: bool = True) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two depthwise-separable blocks, the first strided: DARTS's (and NASNet's) ``sep_conv``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, affine: bool = True) -> None:
        super().__init__(DilConv(c_in, c_in, kernel, stride, kernel // 2, 1, affine),
                         DilConv(c_in, c_out, kernel, 1, kernel // 2, 1, affine))


class FactorizedReduce(nn.Module):
    """Halves the resolution without losing every other pixel: two stride-2 1x1 convolutions, the second shifted by
    one pixel, concatenated. Zero-padded by one first (as NB201's version), so odd sizes work too; on even sizes
    this is DARTS's exactly."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        self.convs = nn.ModuleList(nn.Conv2d(c_in, c_out // 2 + c_out % 2 * (1 - i), 1, stride=2, bias=False)
                                   for i in range(2))
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = self.pad(x)[:, :, 1:, 1:]
        return self.bn(torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1))


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
    def __init__(self, c_in: int, c_out: int, stride: int, mode: str = "avg", affine: bool = True) -> None:
        super().__init__()
        self.project = ReLUConvBN(c_in, c_out, 1, 1, 0, affine) if c_in != c_out else nn.Identity()
        self.pool = (nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False) if mode == "avg"
                     else nn.MaxPool2d(3, stride=stride, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.project(x))


def _skip(c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    if stride == 2:
        return FactorizedReduce(c_in, c_out, affine)
    return ReLUConvBN(c_in, c_out, 1, stride, 0, affine)


OPS: dict[str, Callable[..., nn.Module]] = {
    "none": lambda c_in, c_out, stride, affine=True: Zero(c_in, c_out, stride),
    "skip_connect": _skip,
    "nor_conv_1x1": lambda c_in, c_out, stride, affine=True: ReLUConvBN(c_in, c_out, 1, stride, 0, affine),
    "nor_conv_3x3": lambda c_in, c_out, stride, affine=True: ReLUConvBN(c_in, c_out, 3, stride, 1, affine),
    "avg_pool_3x3": lambda c_in, c_out, stride, affine=True: Pool(c_in, c_out, stride, "avg", affine),
    "max_pool_3x3": lambda c_in, c_out, stride, affine=True: Pool(c_in, c_out, stride, "max", affine),
    "sep_conv_3x3": lambda c_in, c_out, stride, affine=True: SepConv(c_in, c_out, 3, stride, affine),
    "sep_conv_5x5": lambda c_in, c_out, stride, affine=True: SepConv(c_in, c_out, 5, stride, affine),
    "dil_conv_3x3": lambda c_in, c_out, stride, affine=True: DilConv(c_in, c_out, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c_in, c_out, stride, affine=True: DilConv(c_in, c_out, 5, stride, 4, 2, affine),
}
