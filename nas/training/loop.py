"""The training loop: ``train(model, data, config, callbacks) -> metrics``.

Datasets here fit in memory, so each split is normalised once and held as a tensor on the training device; batches
are index slices, shuffled by a generator seeded from ``config.seed``. Tracking plugs in as epoch callbacks, so this
module imports no tracking library.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nas.data import PreparedData, Split, normalize

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "cpu"


def train_config(params: Any, device: str) -> TrainConfig:
    """The loop's config from a params section that has the training keys (``search`` or ``retrain``)."""
    keys = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "label_smoothing", "seed")
    return TrainConfig(**{k: getattr(params, k) for k in keys}, device=device)


def pick_device() -> str:
    """CUDA, then Apple MPS, then CPU: chosen once, passed down, never hard-coded."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def init_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model whose initial weights depend only on ``seed``, leaving the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _on_device(split: Split, manifest: dict, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    return normalize(split.x.to(device), manifest), split.y.to(device)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted class of every row of an already-normalised tensor."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def train(
    model: nn.Module,
    data: PreparedData,
    config: TrainConfig,
    callbacks: Sequence[EpochCallback] = (),
) -> dict[str, list[float] | float]:
    """SGD with Nesterov momentum and a cosine schedule; validation accuracy after every epoch.

    Returns ``train_loss`` and ``val_accuracy`` per epoch and the wall ``seconds`` spent.
    """
    start = time.perf_counter()
    device = config.device
    model.to(device)
    train_x, train_y = _on_device(data.train, data.manifest, device)
    val_x, val_y = _on_device(data.val, data.manifest, device)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum,
        nesterov=config.momentum > 0, weight_decay=config.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train_y) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"train_loss": [], "val_accuracy": []}
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train_y), generator=generator).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            # bf16 autocast on CUDA needs no GradScaler (unlike float16); elsewhere this is a no-op.
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                loss = loss_fn(model(train_x[idx]), train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.detach() * len(idx)
        metrics = {
            "train_loss": total.item() / len(train_y),
            "val_accuracy": (predict(model, val_x) == val_y).float().mean().item(),
        }
        for key, value in metrics.items():
            history[key].append(value)
        for callback in callbacks:
            callback(epoch, metrics)
    return {**history, "seconds": time.perf_counter() - start}
