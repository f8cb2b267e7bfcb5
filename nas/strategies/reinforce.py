"""REINFORCE with an LSTM controller (Zoph & Le, "Neural Architecture Search with Reinforcement Learning", ICLR
2017; Williams 1992).

The one idea: an LSTM emits the architecture one decision at a time, each step fed the previous choice, and is
trained by policy gradient on the architectures' scores: ``-(score - baseline) * log p(arch)``, with an
exponential moving average of past scores as the baseline.

Deviations from the paper, which trained on 800 GPUs:
- An entropy bonus against early collapse (``entropy_weight``); Zoph & Le have none (ENAS, Pham et al. 2018, has).
- One LSTM cell of 32 units, Adam at lr 0.01, an update after every architecture; the paper has 2 layers of 35
  units, Adam at 0.0006, and updates over batches of architectures from parallel workers. A search here has about
  100 architectures, not 12,800.
- Advantages are divided by a running estimate of the scores' spread (``scale``), so one learning rate serves
  accuracies in [0, 1] and in percent.

The decisions are the space's fixed sequence (``distributions()``); a decision an architecture does not have (a
conditional hyperparameter of an absent layer) is stepped through but not trained on.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated

import numpy as np
import torch
from annotated_types import Ge, Gt, Interval
from torch import nn

from nas.strategies.base import Strategy


class Controller(nn.Module):
    def __init__(self, choices: list[int], hidden: int) -> None:
        super().__init__()
        self.start = nn.Parameter(torch.zeros(1, hidden))
        self.cell = nn.LSTMCell(hidden, hidden)
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden) for n in choices)
        self.heads = nn.ModuleList(nn.Linear(hidden, n) for n in choices)

    def logits(self, decisions: list[int] | None, sample: np.random.Generator | None = None):
        """Step through the decisions: the given ones (teacher forcing) or ones sampled with ``sample``.
        Returns (decisions, per-step log-softmax)."""
        x, state, made, log_probs = self.start, None, [], []
        for step, (embed, head) in enumerate(zip(self.embeddings, self.heads)):
            state = self.cell(x, state)
            log_p = torch.log_softmax(head(state[0]), dim=-1)[0]
            if decisions is None:
                p = log_p.exp().detach().numpy().astype(np.float64)
                choice = int(sample.choice(len(p), p=p / p.sum()))
            else:
                choice = decisions[step]
            made.append(choice)
            log_probs.append(log_p)
            x = embed(torch.tensor([choice]))
        return made, log_probs


class REINFORCE(Strategy):
    """Args:
        lr: Adam learning rate of the controller.
        hidden: LSTM width.
        baseline_decay: the moving-average baseline keeps this much of its value per score.
        entropy_weight: weight of the entropy bonus.
    """

    def __init__(self, space, seed=0, lr: Annotated[float, Gt(0)] = 0.01, hidden: Annotated[int, Ge(1)] = 32,
                 baseline_decay: Annotated[float, Interval(ge=0, lt=1)] = 0.9,
                 entropy_weight: Annotated[float, Ge(0)] = 0.01) -> None:
        super().__init__(space, seed)
        if lr <= 0:
            raise ValueError("lr must be a number > 0")
        if hidden < 1:
            raise ValueError("hidden must be an integer >= 1")
        if not 0 <= baseline_decay < 1:
            raise ValueError("baseline_decay must be a number >= 0 and < 1")
        if entropy_weight < 0:
            raise ValueError("entropy_weight must be a number >= 0")
        self.names, self.choices = zip(*((n, tuple(d.choices)) for n, d in space.distributions().items()))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(2**31)))
            self.controller = Controller([len(c) for c in self.choices], hidden)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)
        self.baseline_decay, self.entropy_weight = baseline_decay, entropy_weight
        self.baseline: float | None = None
        self.spread = 0.0  # moving average of |score - baseline| over `self.deviations` scores, not bias-corrected
        self.deviations = 0
        self.sampled: dict[Hashable, list[int]] = {}

    @property
    def scale(self) -> float:
        """What advantages are divided by: the moving average of |score - baseline|, bias-corrected as Adam's moments
        (Kingma & Ba 2015). Uncorrected, it starts at 0, which scaled the second score's advantage to
        1 / (1 - baseline_decay) = 10 times the first deviation."""
        return self.spread / (1 - self.baseline_decay ** self.deviations) if self.deviations else 0.0

    def ask(self) -> Hashable:
        with torch.no_grad():
            made, _ = self.controller.logits(None, self.rng)
        params = {name: choices[i] for name, choices, i in zip(self.names, self.choices, made)}
        arch = self.space.from_params(params)
        self.sampled[arch] = made
        return arch

    def tell(self, arch: Hashable, score: float) -> None:
        params = self.space.to_params(arch)
        made = self.sampled.pop(arch, None) or [c.index(params[n]) for n, c in zip(self.names, self.choices)]
        active = set(self.space.active(params))
        if self.baseline is None:  # the first score is the baseline: no advantage, nothing about the spread
            self.baseline = score
        else:
            self.deviations += 1
            self.spread = self.baseline_decay * self.spread + (1 - self.baseline_decay) * abs(score - self.baseline)
        advantage = score - self.baseline
        self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * score
        scaled = advantage / self.scale if self.scale > 0 else 0.0
        _, log_probs = self.controller.logits(made)
        steps = [i for i, name in enumerate(self.names) if name in active]
        log_p = sum(log_probs[i][made[i]] for i in steps)
        entropy = sum(-(log_probs[i].exp() * log_probs[i]).sum() for i in steps)
        loss = -scaled * log_p - self.entropy_weight * entropy
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
