"""Monte Carlo tree search over the sequence of architecture decisions (Negrinho & Gordon, "DeepArchitect:
Automatically Designing and Training Deep Architectures", 2017; Wang et al., "AlphaX", AAAI 2020).

The one idea: an architecture is a path of decisions (here, one op per edge); UCT picks each decision by the mean
score of the architectures below it plus an exploration bonus, and a random roll-out completes the path from the
first decision never tried. Subtrees whose every architecture has been evaluated are skipped, so the search never
pays twice for one architecture.

This is plain UCT with random roll-outs, as DeepArchitect's MCTS. AlphaX's meta-DNN, which predicts a roll-out's
accuracy, and its distributed roll-outs are not here. In ~100 evaluations the tree barely grows past its first few
levels: on the NB201 protocol it scores 93.86 / 93.81 / 93.79 mean test accuracy for c = 0.1 / 0.5 / 1.414 (200
seeds), random search 93.75.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable
from typing import Annotated

from annotated_types import Ge

from nas.strategies.base import Strategy


class MCTS(Strategy):
    """Args:
        exploration: UCT constant c, on scores scaled to [0, 1] by the lowest and highest seen so far.
    """

    def __init__(self, space, seed=0, exploration: Annotated[float, Ge(0)] = 0.1) -> None:
        super().__init__(space, seed)
        if exploration < 0:
            raise ValueError("exploration must be a number >= 0")
        self.exploration = exploration
        self.decisions = [(name, tuple(d.choices)) for name, d in space.distributions().items()]
        self.visits: dict[tuple, int] = defaultdict(int)
        self.total: dict[tuple, float] = defaultdict(float)
        self.distinct: dict[tuple, int] = defaultdict(int)  # distinct architectures evaluated below a prefix
        self.seen: set[tuple] = set()
        self.low, self.high = math.inf, -math.inf

    def _size(self, depth: int) -> int:
        return math.prod(len(choices) for _, choices in self.decisions[depth:])

    def _ucb(self, parent: tuple, child: tuple) -> float:
        mean = self.total[child] / self.visits[child]
        scaled = (mean - self.low) / (self.high - self.low) if self.high > self.low else 0.5
        return scaled + self.exploration * math.sqrt(math.log(self.visits[parent]) / self.visits[child])

    def ask(self) -> Hashable:
        path: tuple = ()
        for depth, (_, choices) in enumerate(self.decisions):
            children = [path + (c,) for c in choices if self.distinct[path + (c,)] < self._size(depth + 1)]
            if not children:  # everything was evaluated: the space is exhausted, propose at random
                children = [path + (c,) for c in choices]
            untried = [c for c in children if self.visits[c] == 0]
            if untried:
                path = untried[int(self.rng.integers(len(untried)))]
                for _, rest in self.decisions[depth + 1:]:  # roll-out
                    path += (rest[int(self.rng.integers(len(rest)))],)
                break
            path = max(children, key=lambda c: self._ucb(path, c))
        return self.space.from_params({name: value for (name, _), value in zip(self.decisions, path)})

    def tell(self, arch: Hashable, score: float) -> None:
        params = self.space.to_params(arch)
        path = tuple(params[name] for name, _ in self.decisions)
        new = path not in self.seen
        self.seen.add(path)
        self.low, self.high = min(self.low, score), max(self.high, score)
        for depth in range(len(path) + 1):
            prefix = path[:depth]
            self.visits[prefix] += 1
            self.total[prefix] += score
            self.distinct[prefix] += new
