"""Weight-sharing performance estimation: a candidate's score is the validation accuracy of a trained one-shot model
run as that candidate (a supernet restricted to its path, or a hypernetwork's weights generated for it), with no
training of its own. Any model whose ``forward(x, arch)`` returns logits can be estimated: the single-path and ENAS
supernets and the SMASH hypernetwork of ``nas.oneshot`` are.

    >>> # estimator = search.estimator(data.train, data.val)   (a trained nas.oneshot single-path search)
    >>> # result = estimator.estimate(arch)                    # Result(val_accuracy=..., n_params=..., ...)

BatchNorm is the one subtle part: statistics gathered while training over many paths describe their mixture, not any
one path. Three ways to normalise (``bn``):

* ``recalibrate`` (SPOS, Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV
  2020, §3.4): before a candidate is evaluated, the running statistics of every BatchNorm are reset and recomputed
  by forwarding ``bn_batches`` training batches through the candidate; then the val split is evaluated in eval mode.
  The batches are one fixed random subset of the train split (drawn once from ``seed``), the same for every
  candidate. Deviation: the statistics are the exact average over those batches (``momentum=None``); SPOS's code
  resets them and runs its default exponential average (momentum 0.1) over its batches (20,000 ImageNet images).
* ``batch``: every val batch is normalised with its own statistics (train-mode BatchNorm, running statistics left
  alone), as NAS-Bench-201's search cells (which keep none) and ENAS's reward (``is_training=True``) do. The result
  then depends on the batch's size and composition.
* ``running``: eval mode with the statistics training left, an average over every sampled path: no recalibration,
  the baseline that shows what recalibration changes.

The estimator holds its own copy of the model (taken when it is built: the search may train on), and every
estimate restores that copy's buffers, so an estimate depends on nothing but the architecture: not on the order of
the calls, and the search's model is never touched. Estimates run one at a time (a lock: parallel trial threads
share one estimator safely); the estimator pickles without its lock, for process workers.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nas.data import Split
from nas.estimation.cost import count_params
from nas.estimation.training_estimator import Result
from nas.spaces import NetworkConfig

BN_MODES = ("recalibrate", "batch", "running")


def split_tensors(split: Split, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's images as float on ``device``: uint8 scaled to [0, 1], float used as it is (already normalised)."""
    x = split.x.to(device)
    return (x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()), split.y.to(device)


def standalone_params(space: Any, arch: Hashable, network: NetworkConfig) -> int:
    """Parameters of ``arch`` built alone at ``network`` size (on the meta device: nothing is allocated or drawn)."""
    with torch.device("meta"):
        return count_params(space.build(arch, network))


@contextmanager
def restored(module: nn.Module) -> Iterator[None]:
    """Inside, the module's buffers, its BatchNorm momenta and its train/eval mode may change; on leaving, they are
    as they were."""
    buffers = [(buffer, buffer.clone()) for buffer in module.buffers()]
    momenta = [(bn, bn.momentum) for bn in module.modules() if isinstance(bn, _BatchNorm)]
    modes = [(m, m.training) for m in module.modules()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in buffers:
                buffer.copy_(value)
        for bn, momentum in momenta:
            bn.momentum = momentum
        for m, training in modes:
            m.training = training


class WeightSharingEstimator:
    """``estimate(arch) -> Result``: the val accuracy of ``model(x, arch)``.

    Args:
        model: an ``nn.Module`` whose ``forward(x, arch)`` returns logits; copied.
        space: the space's functions (``build`` gives the candidate's stand-alone parameter count).
        network: the size the candidate would be built at alone (for ``n_params``).
        train: the split recalibration images come from.
        val: the split the accuracy is measured on (all of it).
        bn: how BatchNorm normalises, one of ``BN_MODES`` (module doc).
        bn_batches: training batches per recalibration (``bn="recalibrate"``).
        batch_size: size of those batches.
        eval_batch_size: batch size of the val pass.
        seed: picks the recalibration images.
        device: where the copy of the model runs.
    """

    def __init__(self, model: nn.Module, space: Any, network: NetworkConfig, train: Split, val: Split,
                 bn: str = "recalibrate", bn_batches: int = 20, batch_size: int = 64, eval_batch_size: int = 512,
                 seed: int = 0, device: str = "cpu") -> None:
        if bn not in BN_MODES:
            raise ValueError(f"unknown BatchNorm mode {bn!r}; allowed: {', '.join(BN_MODES)}")
        if bn_batches < 1 or batch_size < 1 or eval_batch_size < 1:
            raise ValueError("bn_batches, batch_size and eval_batch_size must be >= 1")
        self.space, self.network, self.bn, self.eval_batch_size = space, network, bn, eval_batch_size
        self.model = copy.deepcopy(model).to(device).requires_grad_(False)
        x, _ = split_tensors(train, device)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:bn_batches * batch_size]
        self.calibration = [x[order[i:i + batch_size].to(device)] for i in range(0, len(order), batch_size)]
        self.val_x, self.val_y = split_tensors(val, device)
        self._lock = threading.Lock()  # an estimate changes the copy's buffers until it ends
        if not len(self.val_y) or (bn == "recalibrate" and not self.calibration):
            raise ValueError("WeightSharingEstimator: the val split (and, to recalibrate, the train split) must not "
                             "be empty")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def _network(self, arch: Hashable) -> Callable[[torch.Tensor], torch.Tensor]:
        """The candidate as a function of a batch (a hook: the hypernetwork generates its weights once here)."""
        return lambda x: self.model(x, arch)

    @torch.no_grad()
    def evaluate(self, arch: Hashable) -> tuple[float, float]:
        """``(val_loss, val_accuracy)`` of ``arch``; leaves the model as it found it."""
        network = self._network(arch)
        with self._lock, restored(self.model):
            if self.bn == "recalibrate":
                for bn in (m for m in self.model.modules() if isinstance(m, _BatchNorm)):
                    bn.reset_running_stats()
                    bn.momentum = None  # a cumulative average: the exact mean over the recalibration batches
                self.model.train()
                for x in self.calibration:
                    network(x)
            self.model.train(self.bn == "batch")
            loss = correct = 0.0
            for i in range(0, len(self.val_y), self.eval_batch_size):
                logits = network(self.val_x[i:i + self.eval_batch_size])
                target = self.val_y[i:i + self.eval_batch_size]
                loss += float(F.cross_entropy(logits, target, reduction="sum"))
                correct += int((logits.argmax(1) == target).sum())
        return loss / len(self.val_y), correct / len(self.val_y)

    def estimate(self, arch: Hashable) -> Result:
        """The candidate's weight-sharing score as the training estimator's ``Result``: ``val_accuracy`` (also the
        one-point ``learning_curve``), no ``train_loss`` (nothing is trained), the stand-alone ``n_params``, and the
        seconds the evaluation took."""
        start = time.perf_counter()
        _, accuracy = self.evaluate(arch)
        return Result(val_accuracy=accuracy, learning_curve=(accuracy,), train_loss=(),
                      n_params=standalone_params(self.space, arch, self.network),
                      seconds=time.perf_counter() - start)
