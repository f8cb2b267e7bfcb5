"""Export of the retrained network for serving outside PyTorch, checked against PyTorch's own outputs.

ONNX (``torch.onnx.export``, dynamic batch) run by ONNX Runtime; TorchScript (``torch.jit.trace``) when the ONNX
exporter cannot express the network. Either way the exported model must reproduce PyTorch's logits on held-out
inputs within ``ATOL + RTOL * |logit|`` (float32 round-off between two kernels libraries, far below what moves a
prediction).
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

ATOL, RTOL = 1e-4, 1e-3


def export(model: torch.nn.Module, inputs: torch.Tensor, folder: Path) -> dict[str, Any]:
    """Write ``folder/model.onnx`` (or ``folder/model.torchscript.pt``) and check it on ``inputs`` (normalised).

    Returns the format, path, the largest absolute difference from PyTorch, the tolerance, and whether it held.
    """
    model = model.cpu().eval()
    folder.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        reference = model(inputs).numpy()
    try:
        path, outputs = _onnx(model, inputs, folder / "model.onnx")
        fmt = "onnx"
    except OSError:  # a file that cannot be written is no reason to ship another format
        raise
    except Exception as exc:  # the exporter's failures have no common type; fall back and say why
        path, outputs = _torchscript(model, inputs, folder / "model.torchscript.pt")
        fmt = f"torchscript (ONNX export failed: {type(exc).__name__})"
    for name in ("model.onnx", "model.onnx.data", "model.torchscript.pt"):  # an earlier export's other format
        if folder / name != path and not (name == "model.onnx.data" and fmt == "onnx"):
            (folder / name).unlink(missing_ok=True)
    diff = np.abs(outputs - reference)
    return {"format": fmt, "path": str(path), "max_abs_diff": float(diff.max()), "atol": ATOL, "rtol": RTOL,
            "inputs_checked": len(inputs), "parity": bool((diff <= ATOL + RTOL * np.abs(reference)).all())}


def _onnx(model: torch.nn.Module, inputs: torch.Tensor, path: Path) -> tuple[Path, np.ndarray]:
    import onnxruntime

    # One self-contained file (the exporter would put the weights beside it in model.onnx.data), unless the weights
    # pass protobuf's 2 GiB limit on one message.
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter narrates every step on stdout
        torch.onnx.export(model, (inputs[:2],), path, dynamo=True, external_data=weights >= 2**31,
                          dynamic_shapes=({0: torch.export.Dim("batch")},))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return path, session.run(None, {session.get_inputs()[0].name: inputs.numpy()})[0]


def _torchscript(model: torch.nn.Module, inputs: torch.Tensor, path: Path) -> tuple[Path, np.ndarray]:
    traced = torch.jit.trace(model, inputs[:2])
    traced.save(str(path))
    with torch.no_grad():
        return path, torch.jit.load(str(path))(inputs).numpy()
