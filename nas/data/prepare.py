"""Stage ``prepare``: a deterministic stratified train/val/test split of a dataset, written as tensors.

Output (a DVC stage output): ``train.pt``, ``val.pt``, ``test.pt`` (uint8 images, int64 labels) and
``manifest.json`` with shapes, class counts, the split seed, normalisation statistics (from the train split only)
and the sha256 of each file. Written to a temporary folder and renamed, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from nas.config import DataParams
from nas.data.datasets import load_raw
from nas.errors import UserError

SPLITS = ("train", "val", "test")


def _split(x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int, key: str):
    idx = np.arange(len(y))
    try:
        keep, held = train_test_split(idx, test_size=fraction, stratify=y.numpy(), random_state=seed)
    except ValueError as exc:  # too few images per class for a stratified split of this size
        raise UserError(f"data.{key}: cannot split {len(y)} images stratified by class ({exc})") from None
    keep, held = np.sort(keep), np.sort(held)
    return (x[keep], y[keep]), (x[held], y[held])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare(params: DataParams) -> dict[str, Any]:
    """Split, compute statistics, write ``params.out``; returns the manifest."""
    raw = load_raw(params.dataset, params.root, params.download)
    if raw.test_x is None:
        rest, test = _split(raw.train_x, raw.train_y, params.test_fraction, params.seed, "test_fraction")
    else:
        rest, test = (raw.train_x, raw.train_y), (raw.test_x, raw.test_y)
    # Val is a fraction of the whole dataset, not of what the test split left.
    val_fraction = params.val_fraction * len(raw.train_y) / len(rest[1])
    train, val = _split(*rest, min(val_fraction, 0.5), params.seed, "val_fraction")
    scaled = train[0].float().div_(255.0)
    mean = scaled.mean(dim=(0, 2, 3)).tolist()
    std = scaled.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()

    out = Path(params.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".prepare-", dir=out.parent))
    try:
        manifest: dict[str, Any] = {
            "dataset": params.dataset,
            "classes": list(raw.classes),
            "num_classes": len(raw.classes),
            "image_shape": list(train[0].shape[1:]),
            "split_seed": params.seed,
            "normalization": {"mean": mean, "std": std, "source": "train split, pixels scaled to [0, 1]"},
            "splits": {},
        }
        for name, (x, y) in zip(SPLITS, (train, val, test)):
            path = tmp / f"{name}.pt"
            torch.save({"x": x.contiguous(), "y": y.contiguous()}, path)
            counts = torch.bincount(y, minlength=len(raw.classes)).tolist()
            manifest["splits"][name] = {
                "file": path.name, "shape": list(x.shape), "class_counts": counts, "sha256": sha256(path),
            }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


@dataclass(frozen=True)
class Split:
    x: torch.Tensor  # uint8 (N, C, H, W)
    y: torch.Tensor  # int64 (N,)


@dataclass(frozen=True)
class PreparedData:
    train: Split
    val: Split
    test: Split
    manifest: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return int(self.manifest["num_classes"])

    @property
    def in_channels(self) -> int:
        return int(self.manifest["image_shape"][0])


def load_prepared(folder: str | Path) -> PreparedData:
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"{manifest_path}: not found; run the prepare stage first (dvc repro prepare)")
    manifest = json.loads(manifest_path.read_text())
    splits = {}
    for name in SPLITS:
        blob = torch.load(folder / manifest["splits"][name]["file"], weights_only=True)
        splits[name] = Split(blob["x"], blob["y"])
    return PreparedData(manifest=manifest, **splits)


def normalize(x: torch.Tensor, manifest: dict[str, Any]) -> torch.Tensor:
    """uint8 images -> float, scaled and standardised with the train split's statistics."""
    stats = manifest["normalization"]
    mean = torch.tensor(stats["mean"], device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(stats["std"], device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - mean) / std
