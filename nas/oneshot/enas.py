"""ENAS (Pham, Guan, Zoph, Le & Dean, "Efficient Neural Architecture Search via Parameter Sharing", ICML 2018).

The one idea: the child models a controller samples all share one set of weights ω, so an architecture's reward is
measured without training it. Training alternates two phases each epoch (§2.2): ω by SGD for one pass over the
training data, each minibatch on one architecture the controller samples (M = 1); then the controller's θ by
REINFORCE for ``controller_steps`` steps, each sampling an architecture and rewarding it with its shared-weight
accuracy on one val minibatch (BatchNorm in training mode, as ENAS's ``build_valid_rl``). The final architecture
(§2.2, "Deriving Architectures"): sample ``samples`` architectures from the trained policy, score each on one val
minibatch, keep the best.

The controller is this project's REINFORCE strategy (``nas.strategies.reinforce``): an LSTM over the space's
decisions (``distributions()``), an exponential-moving-average baseline and an entropy bonus, used through its
ask/tell. Its settings default to ENAS's cell search (``scripts/cifar10_micro_search.sh`` and ``main.py``): Adam at
3.5e-3, an LSTM of 64 units, entropy weight 1e-4, baseline decay 0.99, 300 sampled architectures per epoch (30
steps x 10 aggregated samples), and 10 samples to derive from (the code's "Here are 10 architectures").

Deviations:

* The controller is REINFORCE's LSTM, not ENAS's: its decisions are the space's categorical parameters (NB201: one
  op per edge; DARTS: per node a pair of inputs, then an op per input), each fed back as the next input, where
  ENAS's micro controller picks each input with an attention over the previous nodes' anchors; no tanh constant or
  temperature on the logits; rewards divided by a running estimate of their spread (REINFORCE's normalisation).
* Each controller sample is its own Adam step (REINFORCE's ``tell``), where ENAS aggregates the gradients of 10
  samples per step; the entropy is a bonus in the loss, where ENAS adds it to the reward.
* The supernet is this project's (NB201's or DARTS's cell), not ENAS's micro space with its 5 ops and 5-node cells,
  and ω is trained by ``WeightSharingSearch``'s optimiser (DARTS's SGD, cosine 0.025 -> 0.001, clipping at 5), not
  ENAS's (cosine 0.05 -> 0.0005 with warm restarts, L2 1e-4, auxiliary head and drop-path), so that the one-shot
  methods compare.
* The architectures ω trains on are asked of the strategy and never told (no reward: they are forgotten), and
  ``derive`` samples from the controller with its own generator, so deriving changes no state.
* The baseline starts at the first reward (that sample's advantage is 0) and moves after each advantage is taken;
  ENAS's starts at 0 and moves before, so that its first samples, with rewards near chance, are all reinforced.
* Not measured: the effect of one Adam step per sample (against 30 steps of 10 aggregated samples) on how fast the
  policy's entropy falls.

In the pipeline (``search.strategy: enas``, ``nas.search.weight_sharing``), the final architecture is not
``derive``'s: the search stage asks the trained controller for ``search.n_trials`` architectures, scores each on the
whole val split, keeps telling the controller their rewards (it goes on learning), and retrains the best one; the
trial log holds each. That is ENAS's "sample, score, keep the best" with more samples scored on more data.
``derive`` is ENAS's own rule, for use on the library's ``Enas`` directly.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import torch

from nas.data import Split
from nas.estimation.weight_sharing import split_tensors
from nas.oneshot.base import OneShotConfig, frozen_bn_stats
from nas.oneshot.single_path import WeightSharingSearch
from nas.spaces import NetworkConfig
from nas.strategies.reinforce import REINFORCE


class Enas(WeightSharingSearch):
    """Args (beyond ``WeightSharingSearch``'s):
        controller_steps: REINFORCE steps per epoch, after the pass over the training data.
        controller_lr, controller_hidden, baseline_decay, entropy_weight: the REINFORCE strategy's settings.
    """

    method = "enas"
    default_bn = "batch"  # the controller's own reward normalises each val batch with its statistics

    def __init__(self, space: str, network: NetworkConfig, config: OneShotConfig, seed: int, device: str = "cpu",
                 controller_steps: int = 300, controller_lr: float = 3.5e-3, controller_hidden: int = 64,
                 baseline_decay: float = 0.99, entropy_weight: float = 1e-4) -> None:
        if controller_steps < 1:
            raise ValueError("controller_steps must be an integer >= 1")
        self.controller_steps = controller_steps
        self._settings = {"lr": controller_lr, "hidden": controller_hidden, "baseline_decay": baseline_decay,
                          "entropy_weight": entropy_weight}
        super().__init__(space, network, config, seed, device)
        self.strategy = REINFORCE(self.arch_space, seed=self._extra_seed, **self._settings)

    def options(self) -> dict[str, Any]:
        return {"controller_steps": self.controller_steps, **self._settings}

    def _sample(self) -> Hashable:
        arch = self.strategy.ask()
        self.strategy.sampled.pop(arch, None)  # trained on, never told: the strategy need not remember it
        return arch

    @torch.no_grad()
    def reward(self, arch: Hashable, x: torch.Tensor, y: torch.Tensor) -> float:
        """Shared-weight accuracy of ``arch`` on a batch, BatchNorm on the batch's statistics; no state changes."""
        training = self.model.training
        self.model.train()
        with frozen_bn_stats(self.model):
            accuracy = (self.model(x, arch).argmax(1) == y).float().mean().item()
        self.model.train(training)
        return accuracy

    def _after_weights(self, val_x: torch.Tensor, val_y: torch.Tensor) -> dict[str, float]:
        rewards = []
        for j in self._val_batches(len(val_y), self.controller_steps):
            arch = self.strategy.ask()
            rewards.append(self.reward(arch, val_x[j], val_y[j]))
            self.strategy.tell(arch, rewards[-1])
        return {"reward": float(np.mean(rewards)), "baseline": float(self.strategy.baseline)}

    def sample(self, rng: np.random.Generator) -> Hashable:
        """An architecture from the controller's policy, drawn with ``rng`` (the strategy's state is untouched)."""
        strategy = self.strategy
        with torch.no_grad():
            made, _ = strategy.controller.logits(None, rng)
        return self.arch_space.from_params({name: choices[i] for name, choices, i
                                            in zip(strategy.names, strategy.choices, made)})

    def derive(self, val: Split, samples: int = 10) -> Hashable:
        """ENAS's final architecture: of ``samples`` architectures from the policy, the one with the best reward on
        one val minibatch (the same for all). A function of the seed and the epochs done; changes no state."""
        rng = np.random.default_rng([self.seed, self.epochs_done])
        archs = [self.sample(rng) for _ in range(samples)]
        x, y = split_tensors(val, self.device)
        batch = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(rng.integers(2**31))))
        batch = batch[:self.config.batch_size].to(self.device)
        rewards = [self.reward(arch, x[batch], y[batch]) for arch in archs]
        return archs[int(np.argmax(rewards))]

    def _extra_state(self) -> dict[str, Any]:
        s = self.strategy
        return {"controller": {
            "model": s.controller.state_dict(), "optimizer": s.optimizer.state_dict(), "baseline": s.baseline,
            "spread": s.spread, "deviations": s.deviations, "rng": s.rng.bit_generator.state,
            "sampled": [(self.arch_space.encode(arch), made) for arch, made in s.sampled.items()],
        }}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        c, s = state["controller"], self.strategy
        s.controller.load_state_dict(c["model"])
        s.optimizer.load_state_dict(c["optimizer"])
        # A checkpoint from before the spread's bias correction: its spread as it was (None before the first score),
        # taken as long since corrected.
        s.baseline, s.spread, s.deviations = c["baseline"], c["spread"] or 0.0, c.get("deviations", 10**6)
        s.rng.bit_generator.state = c["rng"]
        s.sampled = {self.arch_space.decode(text): list(made) for text, made in c["sampled"]}
