"""``nas predict``: class and probability for image files or a ``.npy`` array, from any MLflow model URI the
retrain stage logged (``models:/<name>@champion``, ``models:/<name>/3``, ``runs:/<id>/model``).

The registered network takes normalised tensors; what it needs to get there (image shape, normalisation, class
names) is stored in the model's MLflow metadata under ``nas_preprocessing`` by the retrain stage, so a model is
usable without the project's data folder::

    nas predict --model models:/nas-digits@champion --input digit.png digits.npy
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import torch

from nas.data import normalize
from nas.errors import UserError, first_line
from nas.stores import check_store

if TYPE_CHECKING:
    from PIL.Image import Image

PREPROCESSING_KEY = "nas_preprocessing"
STORE_HINT = "name the store the model was registered in (--tracking-uri URI or MLFLOW_TRACKING_URI)"


def preprocessing(manifest: dict[str, Any]) -> dict[str, Any]:
    """The part of a prepared dataset's manifest a served model needs."""
    return {"image_shape": manifest["image_shape"], "classes": manifest["classes"],
            "normalization": {k: manifest["normalization"][k] for k in ("mean", "std")}}


PIXELS = "pixels must be whole numbers 0..255"


def _read_npy(name: str, path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise UserError(f"--input {name}: not a readable .npy array ({first_line(exc)})") from None
    if not isinstance(array, np.ndarray):
        raise UserError(f"--input {name}: an .npz archive, not a .npy array")
    if array.dtype.kind not in "iuf":
        raise UserError(f"--input {name}: holds {array.dtype} values; {PIXELS}")
    if array.size == 0:
        raise UserError(f"--input {name}: holds no pixels (shape {array.shape})")
    if not np.isfinite(array).all():
        raise UserError(f"--input {name}: holds NaN or infinite values; {PIXELS}")
    if array.min() < 0 or array.max() > 255:
        raise UserError(f"--input {name}: holds values from {array.min():g} to {array.max():g}; {PIXELS}")
    fractional = array[array != np.round(array)]
    if fractional.size:  # most likely already normalised (0..1): casting to uint8 would silently make it black
        raise UserError(f"--input {name}: holds fractional values such as {fractional[0]:g}; {PIXELS}, "
                        f"not normalised")
    return array.astype(np.uint8)


def read_inputs(paths: list[str]) -> list[tuple[str, np.ndarray | Image]]:
    """Every input read and its pixel values checked, before any model is loaded: (name, uint8 array or PIL image).

    A ``.npy`` must hold whole pixel values 0..255; any other file must be an image PIL can decode.
    """
    from PIL import Image, UnidentifiedImageError

    inputs = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            raise UserError(f"--input {name}: a folder; give its files (--input {name.rstrip('/')}/*.png)")
        if not path.is_file():
            raise UserError(f"--input {name}: no such file")
        if path.suffix.lower() == ".npy":
            inputs.append((name, _read_npy(name, path)))
            continue
        try:
            image = Image.open(path)
            image.load()  # decode now: a truncated file fails here, not after the model is loaded
        except (UnidentifiedImageError, OSError):
            raise UserError(f"--input {name}: not an image file or .npy array") from None
        inputs.append((name, _eight_bit(name, image)))
    return inputs


def _eight_bit(name: str, image: Image) -> Image:
    """``image`` with 8-bit channels: a 16-bit grayscale one scaled to 0..255 (PIL's ``convert`` would clip every
    value above 255 to white); a 32-bit integer or float one, whose range PIL does not know, is refused."""
    from PIL import Image

    if image.mode.startswith("I;16"):
        wide = np.asarray(image, dtype=np.uint32)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8), "L")
    if image.mode in ("I", "F"):
        raise UserError(f"--input {name}: a 32-bit {'float' if image.mode == 'F' else 'integer'} image, whose "
                        "range is unknown; save it with 8 or 16 bits per channel, or as a .npy array of 0..255")
    return image


def to_batch(inputs: list[tuple[str, np.ndarray | Image]], image_shape: list[int]) -> tuple[torch.Tensor, list[str]]:
    """uint8 images (N, C, H, W) from ``read_inputs``, with a label per image for the output.

    A ``.npy`` array is shaped (H, W), (N, H, W), (C, H, W) or (N, C, H, W). Image files are converted to the model's
    channel count and must have its height and width.
    """
    c, h, w = image_shape
    images, names = [], []
    for name, item in inputs:
        if isinstance(item, np.ndarray):
            array, shape = item, item.shape
            if array.ndim == 2 or (array.ndim == 3 and c > 1 and array.shape[0] == c):
                array = array[None]
            if array.ndim == 3:
                array = array[:, None] if c == 1 else array
            if array.ndim != 4 or tuple(array.shape[1:]) != (c, h, w):
                raise UserError(f"--input {name}: shape {shape}, but the model takes ({c}, {h}, {w}) images "
                                f"as (H, W), (N, H, W), (C, H, W) or (N, C, H, W) arrays of 0..255")
            images.append(torch.from_numpy(np.ascontiguousarray(array)))
            names += [f"{name}[{i}]" for i in range(len(array))] if len(array) > 1 else [name]
            continue
        if item.size != (w, h):
            raise UserError(f"--input {name}: image is {item.size[0]}x{item.size[1]}, the model takes {w}x{h}")
        array = np.array(item.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
        images.append(torch.from_numpy(array[None, None] if c == 1 else array.transpose(2, 0, 1)[None]))
        names.append(name)
    return torch.cat(images), names


def load_images(paths: list[str], image_shape: list[int]) -> tuple[torch.Tensor, list[str]]:
    """uint8 images (N, C, H, W) from image files and ``.npy`` arrays, with a label per image for the output."""
    return to_batch(read_inputs(paths), image_shape)


def predict_files(model_uri: str, inputs: list[str], tracking_uri: str | None = None,
                  shown_uri: str | None = None) -> list[tuple[str, str, float]]:
    """(input, class name, probability) for every image in ``inputs``.

    The inputs and the store (``tracking_uri``, where ``model_uri`` names a run or a registered model; ``shown_uri``
    names it in errors) are checked before MLflow is touched, so bad input creates and changes nothing.
    """
    read = read_inputs(inputs)
    if tracking_uri is not None and urlparse(model_uri).scheme in ("models", "runs"):
        check_store(tracking_uri, shown_uri or f"--tracking-uri {tracking_uri}", STORE_HINT)
    from nas.tracking import load_model  # MLflow is imported once the inputs are known to be good

    model, metadata = load_model(model_uri, tracking_uri)
    prep = metadata.get(PREPROCESSING_KEY)
    if prep is None:
        raise UserError(f"--model {model_uri}: no {PREPROCESSING_KEY} metadata; log it with the retrain stage")
    images, names = to_batch(read, prep["image_shape"])
    with torch.no_grad():
        x = normalize(images, prep)
        # The logged graph (torch.export) has a dynamic batch dimension of size >= 2: pad a lone image.
        logits = model(torch.cat([x, x]) if len(x) == 1 else x)[: len(x)]
        probabilities = torch.softmax(logits.float(), dim=1)
    best = probabilities.max(dim=1)
    return [(n, prep["classes"][k], float(p)) for n, k, p in zip(names, best.indices.tolist(), best.values.tolist())]
