"""The training loop: ``train(model, data, config, callbacks, checkpoint) -> metrics``.

Datasets here fit in memory, so each split is normalised once and held as a tensor on the training device, and
augmentation (random crop with padding, horizontal flip, cutout) runs on that device, batch by batch: the input
pipeline never waits on a CPU worker. Batches are index slices; the order and every augmentation draw come from one
generator seeded from ``config.seed``, so a run is reproducible and, with ``checkpoint``, resumable: the state after
each epoch (weights, optimiser, schedule, generator and RNG states) is saved, and a run started again continues from
it and ends with the same weights as one never interrupted. Tracking plugs in as epoch callbacks, so this module
imports no tracking library.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.data import PreparedData, Split, normalize
from nas.errors import UserError
from nas.training.checkpoints import CheckpointError, read_checkpoint

EpochCallback = Callable[[int, dict[str, float]], None]


class Diverged(Exception):
    """The training loss became NaN or infinite: the weights are garbage and every later epoch would be too."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training diverged at epoch {epoch + 1} (train_loss {loss})")
        self.epoch, self.loss = epoch, loss


# Version of the checkpoint's contents: one of another version (the learning-rate schedule's state was a LambdaLR's
# before 2) is not resumed, the run starts afresh.
_FORMAT = 2
# Datasets whose images may be flipped and shifted (natural images). Digits are not augmented: a flipped digit is
# another digit or none, so SVHN's house numbers are not either (Wide ResNets and Cutout train SVHN unaugmented).
AUGMENTED_DATASETS = ("cifar10", "cifar100")


@dataclass(frozen=True)
class TrainConfig:
    """SGD with Nesterov momentum, linear warm-up then cosine decay (per step), label smoothing, augmentation."""

    epochs: int
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    warmup_epochs: int = 0
    crop_padding: int = 0  # random crop after zero padding by this many pixels; 0: no crop
    flip: bool = False  # random horizontal flip
    cutout: int = 0  # side of a square zeroed at a random place in each image; 0: no cutout
    channels_last: bool = True  # on CUDA only, where convolutions run faster in NHWC
    compile: bool = False  # torch.compile the model for training
    seed: int = 0
    device: str = "cpu"
    # DARTS's retraining extras, for a network that has them (nas.spaces.darts.network): the weight of the auxiliary
    # head's loss, and drop-path, its probability raised linearly from 0 over the epochs (DARTS's train.py).
    auxiliary_weight: float = 0.0
    drop_path_prob: float = 0.0


def train_config(params: Any, device: str, dataset: str) -> TrainConfig:
    """The loop's config from a params section with the training keys (``search`` or ``retrain``); ``augment: auto``
    means crop (padding 4) and flip for natural-image datasets and none for digits."""
    keys = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "label_smoothing", "warmup_epochs", "cutout",
            "channels_last", "compile", "seed")
    augment = params.augment == "crop_flip" or (params.augment == "auto" and dataset in AUGMENTED_DATASETS)
    extras = {k: getattr(params, k) for k in ("auxiliary_weight", "drop_path_prob") if hasattr(params, k)}
    return TrainConfig(**{k: getattr(params, k) for k in keys}, crop_padding=4 if augment else 0, flip=augment,
                       device=device, **extras)


def pick_device() -> str:
    """CUDA, then Apple MPS, then CPU: chosen once, passed down, never hard-coded."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


# Layers draw their initial weights from torch's global generator, one per process: models built by parallel trial
# threads at once would draw from each other's stream.
_INIT_LOCK = threading.Lock()


def init_model(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model whose initial weights depend only on ``seed``, leaving the global RNG untouched (thread-safe)."""
    with _INIT_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def _on_device(split: Split, manifest: dict, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    return normalize(split.x.to(device), manifest), split.y.to(device)


def augment(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding, horizontal flip and cutout of a batch, on its own device; the draws come
    from ``generator`` (on the CPU, so they are the same on every device).

    The batch is already normalised, so the padding (0) is each channel's mean colour, where torchvision's
    ``RandomCrop(padding=4)`` before ``Normalize`` (DARTS's and Cutout's pipelines) pads black; cutout's 0 is the mean
    colour in both, as in Cutout.

    Written by hand, batched, because torchvision's v2 transforms draw one set of parameters per call: per-image draws
    take one call per image, which is slower. CIFAR-size batches (3x32x32, padding 4, flip, cutout 16) on the CPU,
    one thread, fastest of 150 runs, batch 64 / 256: this function 0.7 / 2.9 ms; v2.functional crop + horizontal_flip
    + erase per image with these same draws (identical output) 2.1 / 9.1 ms; v2.Compose(RandomCrop,
    RandomHorizontalFlip, RandomErasing) per image under fork_rng seeded from ``generator`` 9.0 / 35 ms. On a GPU
    each per-image call also costs kernel launches.
    """
    n, _, h, w = x.shape
    device = x.device
    if config.crop_padding:
        p = config.crop_padding
        dy, dx = torch.randint(0, 2 * p + 1, (2, n), generator=generator).to(device)
        windows = F.pad(x, (p, p, p, p)).unfold(2, h, 1).unfold(3, w, 1)  # (n, C, 2p+1, 2p+1, h, w): a view
        x = windows[torch.arange(n, device=device), :, dy, dx]
    if config.flip:
        flip = (torch.rand(n, generator=generator) < 0.5).to(device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    if config.cutout:
        cy, cx = torch.randint(0, h, (n,), generator=generator), torch.randint(0, w, (n,), generator=generator)
        half = config.cutout // 2
        ys, xs = torch.arange(h), torch.arange(w)
        inside_y = (ys[None, :] >= (cy - half)[:, None]) & (ys[None, :] < (cy - half + config.cutout)[:, None])
        inside_x = (xs[None, :] >= (cx - half)[:, None]) & (xs[None, :] < (cx - half + config.cutout)[:, None])
        hole = (inside_y[:, :, None] & inside_x[:, None, :]).to(device)
        x = x.masked_fill(hole[:, None], 0.0)
    return x


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int,
                  total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per batch: a linear warm-up that reaches the full rate at its last step ((k + 1) / warmup_steps
    at step k), then cosine decay to 0 at ``total_steps``."""
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
    if not warmup_steps:
        return cosine
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup_steps, total_iters=warmup_steps - 1)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


def _rng_states() -> dict[str, Any]:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


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
    checkpoint: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``model`` on ``data.train``, reporting validation accuracy after every epoch.

    Args:
        checkpoint: a file to save the training state to after every epoch and resume from when it exists and was
            written by a run with the same config (a different config starts afresh). Callbacks see only the
            epochs this call trains.

    Returns ``train_loss`` and ``val_accuracy`` per epoch, the wall ``seconds`` the training took (of a resumed run:
    with the seconds spent before the interruption, up to its last checkpoint), and ``resumed_from`` (the number of
    epochs taken from the checkpoint).

    Raises:
        Diverged: when an epoch's training loss is not finite (checked once per epoch: a NaN stays NaN, and the
            check costs one synchronisation, which the epoch's loss already pays).
    """
    start = time.perf_counter()
    device = config.device
    cuda = device.startswith("cuda")
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest kernels
    memory_format = torch.channels_last if cuda and config.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    train_x, train_y = _on_device(data.train, data.manifest, device)
    train_x = train_x.contiguous(memory_format=memory_format)
    val_x, val_y = _on_device(data.val, data.manifest, device)
    val_x = val_x.contiguous(memory_format=memory_format)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum,
        nesterov=config.momentum > 0, weight_decay=config.weight_decay,
    )
    batches = minibatches(len(train_y), config.batch_size)
    steps_per_epoch = len(batches)
    scheduler = warmup_cosine(optimizer, config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {"train_loss": [], "val_accuracy": []}
    first_epoch, earlier_seconds = 0, 0.0
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.is_file():
        try:
            state = read_checkpoint(path, weights_only=False, map_location=device)
        except CheckpointError as exc:
            raise UserError(f"{path}: not a readable training checkpoint: {exc}; delete it to train from the "
                            "first epoch") from None
        # One of other settings, or of an older format, is trained over from the first epoch.
        if isinstance(state, dict) and state.get("config") == asdict(config) and state.get("format") == _FORMAT:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            generator.set_state(state["generator"])
            _restore_rng(state["rng"])
            history, first_epoch = state["history"], state["epoch"]
            earlier_seconds = state.get("seconds", 0.0)  # spent before the interruption
    forward = torch.compile(model) if config.compile else model
    for epoch in range(first_epoch, config.epochs):
        model.train()
        if config.drop_path_prob and hasattr(model, "drop_path_prob"):
            model.drop_path_prob = config.drop_path_prob * epoch / config.epochs
            model.drop_path_generator = generator  # its masks too come from the seed, and resume with it
        order = torch.randperm(len(train_y), generator=generator).to(device)
        total = torch.zeros((), device=device)
        for i, j in batches:
            idx = order[i:j]
            x = train_x[idx]
            if config.crop_padding or config.flip or config.cutout:
                x = augment(x, config, generator).contiguous(memory_format=memory_format)
            # bf16 autocast on CUDA needs no GradScaler (unlike float16); elsewhere this is a no-op.
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = loss_fn(forward(x), train_y[idx])
                aux = getattr(model, "aux_logits", None) if config.auxiliary_weight else None
                if aux is not None:  # set by the forward just run, in training mode
                    loss = loss + config.auxiliary_weight * loss_fn(aux, train_y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.detach() * len(idx)
        train_loss = total.item() / len(train_y)
        if not math.isfinite(train_loss):
            raise Diverged(epoch, train_loss)
        metrics = {"train_loss": train_loss, "val_accuracy": (predict(model, val_x) == val_y).float().mean().item()}
        for key, value in metrics.items():
            history[key].append(value)
        if path is not None:
            _save(path, {"format": _FORMAT, "config": asdict(config), "epoch": epoch + 1, "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                         "generator": generator.get_state(), "rng": _rng_states(), "history": history,
                         "seconds": earlier_seconds + time.perf_counter() - start})
        for callback in callbacks:
            callback(epoch, metrics)
    return {**history, "seconds": earlier_seconds + time.perf_counter() - start, "resumed_from": first_epoch}


def minibatches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """The (start, end) of each minibatch of an epoch over ``n`` examples. A last batch of one example joins the one
    before it: BatchNorm in training mode cannot normalise a single value per channel (a head on a 1x1 map)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], n], strict=True))


def _save(path: Path, state: dict[str, Any]) -> None:
    """Write-then-rename: a kill during the save leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
