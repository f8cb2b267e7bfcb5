"""Local search (White, Zela, Ru, Liu & Hutter, "How Powerful are Performance Predictors in Neural Architecture
Search?" / "Exploring the Loss Landscape in Neural Architecture Search", UAI 2021).

The one idea: from the best architecture so far, evaluate its neighbours (one op changed) in random order and move
to the first that is better; when none is (a local optimum), restart from a random architecture.
"""

from __future__ import annotations

from collections.abc import Hashable

from nas.strategies.base import Strategy


class LocalSearch(Strategy):
    def __init__(self, space, seed=0) -> None:
        super().__init__(space, seed)
        self.current: tuple[Hashable, float] | None = None
        self.queue: list[Hashable] = []  # unevaluated neighbours of the current architecture, in visiting order
        self.seen: set[Hashable] = set()

    def ask(self) -> Hashable:
        while self.queue:
            arch = self.queue.pop()
            if arch not in self.seen:
                return arch
        self.current = None  # a local optimum (or the start): restart from a random architecture
        return self.space.sample(self.rng)

    def tell(self, arch: Hashable, score: float) -> None:
        self.seen.add(arch)
        if self.current is None or score > self.current[1]:
            self.current = (arch, score)
            neighbors = self.space.neighbors(arch)
            self.queue = [neighbors[i] for i in self.rng.permutation(len(neighbors))]
