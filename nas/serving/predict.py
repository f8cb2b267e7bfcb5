"""``nas predict``: class and probability for image files or a ``.npy`` array, from any MLflow model URI the
retrain stage logged (``models:/<name>@champion``, ``models:/<name>/3``, ``runs:/<id>/model``).

The registered network takes normalised tensors; what it needs to get there (image shape, normalisation, class
names) is stored in the model's MLflow metadata under ``nas_preprocessing`` by the retrain stage, so a model is
usable without the project's data folder::

    nas predict --model models:/nas-digits@champion --input digit.png digits.npy
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.data import normalize
from nas.errors import UserError

PREPROCESSING_KEY = "nas_preprocessing"


def preprocessing(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a prepared dataset's manifest a served model needs."""
    return {"image_shape": manifest["image_shape"], "classes": manifest["classes"],
            "normalization": {k: manifest["normalization"][k] for k in ("mean", "std")}}


def load_images(paths: list[str], image_shape: list[int]) -> tuple[torch.Tensor, list[str]]:
    """uint8 images (N, C, H, W) from image files and ``.npy`` arrays, with a label per image for the output.

    A ``.npy`` holds pixel values 0..255 shaped (H, W), (N, H, W), (C, H, W) or (N, C, H, W). Image files are
    converted to the model's channel count and must have its height and width.
    """
    from PIL import Image, UnidentifiedImageError

    c, h, w = image_shape
    images, names = [], []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"--input {name}: no such file")
        if path.suffix == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as exc:
                raise UserError(f"--input {name}: not a readable .npy array ({exc})") from None
            shape = array.shape
            if array.ndim == 2 or (array.ndim == 3 and c > 1 and array.shape[0] == c):
                array = array[None]
            if array.ndim == 3:
                array = array[:, None] if c == 1 else array
            if array.ndim != 4 or tuple(array.shape[1:]) != (c, h, w):
                raise UserError(f"--input {name}: shape {shape}, but the model takes ({c}, {h}, {w}) images "
                                f"as (H, W), (N, H, W), (C, H, W) or (N, C, H, W) arrays of 0..255")
            if array.min(initial=0) < 0 or array.max(initial=0) > 255:
                raise UserError(f"--input {name}: values must be pixel values in 0..255")
            images.append(torch.from_numpy(np.ascontiguousarray(array).astype(np.uint8)))
            names += [f"{name}[{i}]" for i in range(len(array))] if len(array) > 1 else [name]
            continue
        try:
            image = Image.open(path).convert("L" if c == 1 else "RGB")
        except (UnidentifiedImageError, OSError):
            raise UserError(f"--input {name}: not an image file or .npy array") from None
        if image.size != (w, h):
            raise UserError(f"--input {name}: image is {image.size[0]}x{image.size[1]}, the model takes {w}x{h}")
        array = np.array(image, dtype=np.uint8)
        images.append(torch.from_numpy(array[None, None] if c == 1 else array.transpose(2, 0, 1)[None]))
        names.append(name)
    return torch.cat(images), names


def predict_files(model_uri: str, inputs: list[str]) -> list[tuple[str, str, float]]:
    """(input, class name, probability) for every image in ``inputs``."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.models.get_model_info(model_uri)
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except (MlflowException, OSError) as exc:
        raise UserError(f"--model {model_uri}: cannot load it ({str(exc).splitlines()[0]})") from None
    prep = (info.metadata or {}).get(PREPROCESSING_KEY)
    if prep is None:
        raise UserError(f"--model {model_uri}: no {PREPROCESSING_KEY} metadata; log it with the retrain stage")
    images, names = load_images(inputs, prep["image_shape"])
    with torch.no_grad():
        x = normalize(images, prep)
        # The logged graph (torch.export) has a dynamic batch dimension of size >= 2: pad a lone image.
        logits = model(torch.cat([x, x]) if len(x) == 1 else x)[: len(x)]
        probabilities = torch.softmax(logits.float(), dim=1)
    best = probabilities.max(dim=1)
    return [(n, prep["classes"][k], float(p)) for n, k, p in zip(names, best.indices.tolist(), best.values.tolist())]
