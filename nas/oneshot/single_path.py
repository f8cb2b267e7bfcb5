"""Single-path weight sharing: one supernet holds the weights of every architecture of the space, and each training
step trains one architecture's path through it; a candidate is then scored with the weights it inherits, no
training of its own (``estimator()``: ``nas.estimation.weight_sharing``), and any ask/tell strategy searches over
those scores.

    >>> from nas.oneshot import OneShotConfig
    >>> from nas.oneshot.single_path import Spos
    >>> from nas.spaces.nb201 import NetworkConfig
    >>> search = Spos("nb201", NetworkConfig(8, 1, 1, 10), OneShotConfig(epochs=20), seed=0)
    >>> # for epoch in range(20): metrics = search.run_epoch(train, val, epoch)
    >>> # score = search.estimator(train, val).estimate(arch).val_accuracy

Two papers, one training:

* RSWS, random search with weight sharing (Li & Talwalkar, "Random Search and Reproducibility for Neural
  Architecture Search", UAI 2019): each minibatch trains the shared weights of one architecture drawn uniformly at
  random; random architectures are then ranked by their shared-weight accuracy.
* SPOS (Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020): the same
  uniform single-path training, which decouples the supernet's training from the search; an evolutionary search
  then runs over the supernet, every candidate's BatchNorm statistics recalibrated on training batches first.

Here a path is the supernet's hard forward (``nas.oneshot.mixed``): one-hot edge weights from the supernet's
``arch_weights(arch)``, and the index of each edge's op, so only the chosen op of every edge runs. An NB201
architecture is one of the five ops on each of the six edges (``none`` included: NB201's re-implementations of
RSWS and SPOS sample it too); a DARTS one is a whole ``DartsSpace().sample`` genotype, the edges it does not use
running ``none`` (nothing). Architectures come from a seeded numpy generator, batch orders from a seeded torch one.

Training is DARTS's weight optimiser, shared with ``nas.oneshot.base`` (``OneShotConfig``'s w_* settings: SGD,
momentum 0.9, weight decay 3e-4, gradient norm clipped at 5, cosine learning rate 0.025 -> 0.001 over the epochs;
the α and τ settings are unused). Deviations:

* The papers train with their own schedules (SPOS its ImageNet one; RSWS DARTS's weight settings on CIFAR-10, with
  its own batch size and epochs). DARTS's are used for all here, so that the one-shot methods compare.
* Gradients are reset to None, so the ops off a step's path get no momentum or weight-decay update (the papers'
  code zeroes them, and weight decay and momentum still move every op each step). Measured on SPOS's ranking
  (``benchmarks/oneshot.py``, 60 supernet epochs, 30 architectures, 3-seed stand-alone reference): Kendall τ 0.197
  here, 0.198 with the papers' zeroing: no effect on what the estimator is for.
* SPOS's search is a genetic algorithm (population 50, the top 10 kept, 25 children by crossover and 25 by mutation
  at probability 0.1 per choice, 20 generations: its ``search.py``); here it is ``search.oneshot.searcher``,
  regularized evolution by default (aging, tournaments, mutation only, no crossover), which with the default 24
  trials is 20 random architectures and 4 mutations. Not measured against the GA: the searcher only orders the
  estimator's scores, and the estimator's ranking (τ above) is what limits it here.
* The estimators' BatchNorm defaults: SPOS recalibrates (as its paper); for RSWS, whose paper gives no special
  treatment, each val batch is normalised with its own statistics, as NB201's re-implementation (search cells with
  no running statistics) does. Either can be asked of either (``estimator(..., bn=...)``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nas.data import Split
from nas.estimation.weight_sharing import WeightSharingEstimator, split_tensors
from nas.oneshot.base import SUPERNETS, OneShotConfig, same_search
from nas.spaces import SPACES, NetworkConfig
from nas.training.loop import Diverged, init_model

_FORMAT = 1  # version of state_dict's layout


def path_weights(supernet: nn.Module, arch: Any, device: str | torch.device) -> tuple[dict, dict]:
    """The hard forward's arguments that select exactly ``arch``: one-hot weights and each edge's op index (an edge
    the architecture does not use has a zero row, whose index 0 is ``none``)."""
    weights = {name: w.to(device) for name, w in supernet.arch_weights(arch).items()}
    return weights, {name: w.argmax(-1).tolist() for name, w in weights.items()}


class SinglePathNet(nn.Module):
    """A supernet run one architecture at a time: ``forward(x, arch)``, only the path's ops computed."""

    def __init__(self, supernet: nn.Module) -> None:
        super().__init__()
        self.supernet = supernet

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        return self.supernet(x, *path_weights(self.supernet, arch, x.device))


class WeightSharingSearch:
    """The training loop the weight-sharing methods share: one architecture per minibatch (``_sample``), one
    ``run_epoch`` per epoch, a state that resumes bit-identically, and ``estimator()`` over the current weights.

    Subclasses may change the model (``_build``), its optimiser (``_make_optimizer``, ``lr``), how a step's
    architecture is drawn (``_sample``), add a phase after the weights' pass (``_after_weights``) and their state.
    """

    method = "single_path"
    default_bn = "recalibrate"

    def __init__(self, space: str, network: NetworkConfig, config: OneShotConfig, seed: int,
                 device: str = "cpu") -> None:
        if space not in SUPERNETS:
            raise ValueError(f"unknown one-shot space {space!r}; allowed: {', '.join(SUPERNETS)}")
        self.space, self.network, self.config, self.seed, self.device = space, network, config, seed, device
        self.arch_space = SPACES[space]
        init_seed, batch_seed, arch_seed, self._extra_seed = (
            int(s) for s in np.random.SeedSequence(seed).generate_state(4))
        self.model = init_model(self._build, init_seed).to(device)
        self.optimizer = self._make_optimizer()
        self.batch_generator = torch.Generator().manual_seed(batch_seed)
        self.rng = np.random.default_rng(arch_seed)
        self.epochs_done = 0

    # --- what subclasses change ---
    def _build(self) -> nn.Module:
        return SinglePathNet(SUPERNETS[self.space](self.network))

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        return torch.optim.SGD(self.model.parameters(), lr=c.w_lr, momentum=c.momentum, weight_decay=c.w_weight_decay)

    def lr(self, epoch: int) -> float:
        """Cosine from ``w_lr`` to ``w_lr_min`` over the epochs, a function of the epoch (as ``OneShotSearch``)."""
        c = self.config
        return c.w_lr_min + (c.w_lr - c.w_lr_min) * (1 + math.cos(math.pi * epoch / c.epochs)) / 2

    def _sample(self) -> Any:
        """The architecture a training step trains: uniform over the space."""
        return self.arch_space.sample(self.rng)

    def _after_weights(self, val_x: torch.Tensor, val_y: torch.Tensor) -> dict[str, float]:
        """A phase after the epoch's pass over the training data (ENAS trains its controller); returns metrics."""
        return {}

    def _grad_clip(self) -> float | None:
        return self.config.grad_clip

    def options(self) -> dict[str, Any]:
        """The method's own settings (checked when a state is loaded)."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    # --- the loop ---
    def run_epoch(self, train: Split, val: Split, epoch: int) -> dict[str, float]:
        """Train one epoch (``epoch`` counts from 0 and must be the next one): one pass over ``train`` in batches,
        each on its own architecture, then the method's phase after it, which may use ``val``.

        Returns ``train_loss`` and ``train_accuracy`` (of the batches' own paths, as they were trained), ``lr``,
        ``seconds`` and the method's metrics.

        Raises:
            Diverged: when the epoch's training loss is not finite.
        """
        if epoch != self.epochs_done or epoch >= self.config.epochs:
            raise ValueError(f"run_epoch: the next epoch is {self.epochs_done} of {self.config.epochs}, got {epoch}")
        start = time.perf_counter()
        lr = self.lr(epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = split_tensors(train, self.device)
        val_x, val_y = split_tensors(val, self.device)
        if not len(y) or not len(val_y):
            raise ValueError("run_epoch: the train and val splits must not be empty")
        size = self.config.batch_size
        order = torch.randperm(len(y), generator=self.batch_generator)
        self.model.train()
        total = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        for k in range(0, len(y), size):
            i = order[k:k + size].to(self.device)
            loss, hits = self._weight_step(x[i], y[i], self._sample())
            total += loss * len(i)
            correct += hits
        train_loss = total.item() / len(y)
        if not math.isfinite(train_loss):
            raise Diverged(epoch, train_loss)
        metrics = {"train_loss": train_loss, "train_accuracy": correct.item() / len(y), "lr": lr,
                   **self._after_weights(val_x, val_y)}
        self.epochs_done = epoch + 1
        return {**metrics, "seconds": time.perf_counter() - start}

    def _weight_step(self, x: torch.Tensor, y: torch.Tensor, arch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)  # an op off the path keeps no gradient: no update at all
        logits = self.model(x, arch)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        if self._grad_clip() is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self._grad_clip())
        self.optimizer.step()
        return loss.detach(), (logits.detach().argmax(1) == y).sum()

    def _val_batches(self, n: int, count: int) -> list[torch.Tensor]:
        """``count`` minibatches of val indices, drawn without replacement within each pass over the val split."""
        size = self.config.batch_size
        order = torch.cat([torch.randperm(n, generator=self.batch_generator)
                           for _ in range(math.ceil(count * size / n))])
        return [order[k * size:(k + 1) * size].to(self.device) for k in range(count)]

    # --- results ---
    def estimator(self, train: Split, val: Split, bn: str | None = None, bn_batches: int = 20,
                  ) -> WeightSharingEstimator:
        """An estimator over a copy of the current weights (the search may go on training). ``bn``: how BatchNorm
        normalises (``nas.estimation.weight_sharing.BN_MODES``); None: the method's default."""
        return WeightSharingEstimator(self.model, self.arch_space, self.network, train, val, bn or self.default_bn,
                                      bn_batches, self.config.batch_size, self.config.eval_batch_size, self.seed,
                                      self.device)

    # --- checkpoint ---
    def state_dict(self) -> dict[str, Any]:
        """Everything the next epoch reads, copied (the search may go on): weights, BatchNorm statistics, the
        optimiser, the epoch count (the learning rate is a function of it), the batch and architecture generators,
        and the method's own state."""
        return copy.deepcopy({
            "format": _FORMAT, "method": self.method, "space": self.space, "network": asdict(self.network),
            "config": asdict(self.config), "options": self.options(), "seed": self.seed,
            "epochs_done": self.epochs_done, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "batch_generator": self.batch_generator.get_state(), "rng": self.rng.bit_generator.state,
            **self._extra_state(),
        })

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state_dict()``'s output; raises ValueError when it comes from a different search (method,
        space, network, config or options)."""
        if state.get("format") != _FORMAT:
            raise ValueError(f"not a weight-sharing search state of format {_FORMAT}")
        same_search(state, {"method": self.method, "space": self.space, "seed": self.seed,
                            "network": asdict(self.network), "config": asdict(self.config), "options": self.options()})
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.batch_generator.set_state(state["batch_generator"])
        self.rng.bit_generator.state = state["rng"]
        self.epochs_done = int(state["epochs_done"])
        self._load_extra_state(state)


class Spos(WeightSharingSearch):
    """SPOS: uniform single-path training; its estimator recalibrates BatchNorm per candidate."""

    method = "spos"
    default_bn = "recalibrate"


class RandomSearchWeightSharing(WeightSharingSearch):
    """RSWS: uniform single-path training; its estimator normalises each val batch with its own statistics."""

    method = "rsws"
    default_bn = "batch"
