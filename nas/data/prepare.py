"""Stage ``prepare``: a deterministic stratified train/val/test split of a dataset, written as tensors.

Output (a DVC stage output): ``train.pt``, ``val.pt``, ``test.pt`` (uint8 images, int64 labels) and
``manifest.json`` with the settings that made the split, shapes, class counts, normalisation statistics (from the train
split only) and the size and sha256 of each file. Written to a temporary folder and renamed, so a failure leaves
nothing half-written.

The manifest is the contract with every later stage: ``load_prepared`` checks it, each file's size and sha256 (once
per file and process, streamed) and the settings against ``params.yaml`` before any tensor is used, so a changed,
swapped, truncated or stale file is one error line naming it and the command that fixes it, never a silent run on
the wrong data.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, Field, ValidationError, model_validator
from sklearn.model_selection import train_test_split

from nas.config import DataParams
from nas.data.datasets import load_raw
from nas.errors import UserError, first_line

SPLITS = ("train", "val", "test")
# The data settings that decide what the prepared files hold; recorded in the manifest and checked by every reader.
SPLIT_SETTINGS = ("dataset", "val_fraction", "test_fraction", "seed")
FIX = "run `dvc repro prepare` (or `nas prepare`)"


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
            "params": {key: getattr(params, key) for key in SPLIT_SETTINGS},
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
                "file": path.name, "shape": list(x.shape), "class_counts": counts, "bytes": path.stat().st_size,
                "sha256": sha256(path),
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


class _SplitEntry(BaseModel):
    file: str = Field(pattern=r"^[^/\\]+$")  # a file name inside the folder, never a path out of it
    shape: list[int] = Field(min_length=4, max_length=4)
    class_counts: list[int]
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class _Normalization(BaseModel):
    mean: list[float] = Field(min_length=1)
    std: list[float] = Field(min_length=1)


class _Manifest(BaseModel):
    params: dict[Literal[SPLIT_SETTINGS], Any] = Field(min_length=len(SPLIT_SETTINGS))  # type: ignore[valid-type]
    dataset: str
    classes: list[str] = Field(min_length=1)
    num_classes: int = Field(ge=1)
    image_shape: list[int] = Field(min_length=3, max_length=3)
    normalization: _Normalization
    splits: dict[Literal[SPLITS], _SplitEntry] = Field(min_length=len(SPLITS))  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _consistent(self) -> _Manifest:
        """What the prepare stage writes agrees with itself: an entry swapped or copied to another split (test =
        val), or a class count or shape edited, is refused (the files' own sizes and hashes are checked apart)."""
        if len(self.classes) != self.num_classes:
            raise ValueError(f"num_classes is {self.num_classes}, but {len(self.classes)} classes are listed")
        channels = self.image_shape[0]
        if not len(self.normalization.mean) == len(self.normalization.std) == channels:
            raise ValueError(f"normalization: one mean and one std per channel ({channels})")
        for name, entry in self.splits.items():
            if entry.file != f"{name}.pt":
                raise ValueError(f"splits.{name}.file is {entry.file!r}; the {name} split is {name}.pt")
            if entry.shape[1:] != self.image_shape:
                raise ValueError(f"splits.{name}.shape {entry.shape} does not hold images of {self.image_shape}")
            if len(entry.class_counts) != self.num_classes or sum(entry.class_counts) != entry.shape[0]:
                raise ValueError(f"splits.{name}.class_counts: one count per class ({self.num_classes}), summing to "
                                 f"the split's {entry.shape[0]} images")
        return self


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"{path}: not found; run the prepare stage first (dvc repro prepare)")
    try:
        manifest = json.loads(path.read_text())
        _Manifest.model_validate(manifest)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc}); {FIX}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        what = f"{where}: {first['msg']}" if where else str(first["ctx"]["error"]) if "ctx" in first else first["msg"]
        raise UserError(f"{path}: {what} (not a manifest the prepare stage wrote); {FIX}") from None
    return manifest


@lru_cache(maxsize=64)
def _verified_sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    """A file's sha256, read once per process for as long as its size, time and inode stay the same."""
    return sha256(Path(path))


def _check_file(path: Path, entry: dict[str, Any], manifest_path: Path) -> None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise UserError(f"{path}: missing (listed in {manifest_path}); {FIX}") from None
    if stat.st_size != entry["bytes"]:
        raise UserError(f"{path}: {stat.st_size} bytes, but {manifest_path} records {entry['bytes']} (the file was "
                        f"truncated or replaced); {FIX}")
    if _verified_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino) != entry["sha256"]:
        raise UserError(f"{path}: sha256 differs from the one in {manifest_path} (the file or the manifest changed "
                        f"after the prepare stage); {FIX}")


def _load_split(path: Path, entry: dict[str, Any], num_classes: int) -> Split:
    try:
        blob = torch.load(path, weights_only=True)
        x, y = blob["x"], blob["y"]
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a prepared split ({first_line(exc).split('. ')[0]}); {FIX}") from None
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dtype == torch.uint8
            and y.dtype == torch.int64 and list(x.shape) == entry["shape"] and y.shape == (len(x),)
            and (len(y) == 0 or 0 <= int(y.min()) <= int(y.max()) < num_classes)):
        raise UserError(f"{path}: its tensors do not match the shape {entry['shape']}, uint8 images and labels "
                        f"0..{num_classes - 1} the manifest records; {FIX}")
    return Split(x, y)


def load_prepared(folder: str | Path, expected: DataParams | None = None) -> PreparedData:
    """Read what the prepare stage wrote, after checking it against its manifest.

    Args:
        expected: the ``data`` section of params.yaml; when given, the data must have been prepared with its
            dataset, fractions and seed.

    Raises:
        UserError: one line naming the file at fault and the command that fixes it.
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    manifest = _read_manifest(manifest_path)
    if expected is not None:
        wanted = {key: getattr(expected, key) for key in SPLIT_SETTINGS}
        changed = [key for key in SPLIT_SETTINGS if manifest["params"].get(key) != wanted[key]]
        if changed:
            was = ", ".join(f"data.{k}={manifest['params'].get(k)}" for k in changed)
            now = ", ".join(f"data.{k}={wanted[k]}" for k in changed)
            raise UserError(f"{folder} was prepared with {was}, but params.yaml has {now}; {FIX}")
    entries = manifest["splits"]
    for name in SPLITS:
        _check_file(folder / entries[name]["file"], entries[name], manifest_path)
    splits = {name: _load_split(folder / entries[name]["file"], entries[name], manifest["num_classes"])
              for name in SPLITS}
    return PreparedData(manifest=manifest, **splits)


def normalize(x: torch.Tensor, manifest: dict[str, Any]) -> torch.Tensor:
    """uint8 images -> float, scaled and standardised with the train split's statistics."""
    stats = manifest["normalization"]
    mean = torch.tensor(stats["mean"], device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(stats["std"], device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - mean) / std
