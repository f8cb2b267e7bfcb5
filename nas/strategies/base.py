"""The strategy contract: ``ask() -> arch``, ``tell(arch, score)``.

A strategy never trains, logs or sleeps, and draws every random choice from its own ``numpy.random.Generator``.
Because ``ask``/``tell`` are its only inputs, its state is rebuilt from a trial log by replaying the log through
them (``replay``): a search killed at any point continues exactly as it would have without the interruption.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np


class Strategy(ABC):
    """Base of the native strategies. Subclasses implement ``ask`` and usually ``tell``."""

    def __init__(self, space: Any, seed: int | np.random.Generator = 0) -> None:
        self.space = space
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    @abstractmethod
    def ask(self) -> Hashable:
        """Propose the next architecture to evaluate."""

    def tell(self, arch: Hashable, score: float) -> None:
        """Receive the score (higher is better) of an architecture this strategy proposed."""

    def replay(self, history: Iterable[tuple[Hashable, float]]) -> None:
        """Rebuild state from a log of ``(arch, score)`` in the order they were evaluated.

        Each entry replays the ``ask`` that proposed it, so the random stream ends where the original run's did,
        then tells the logged architecture (the log, not the replayed proposal, is the truth).
        """
        for arch, score in history:
            self.ask()
            self.tell(arch, score)


class SurrogateStrategy(Strategy):
    """Base of the model-based strategies: ``initial`` random architectures, then batches of ``batch`` proposals,
    one ``_propose`` (one refit of the surrogate) per batch, skipping any already evaluated."""

    def __init__(self, space: Any, seed: int | np.random.Generator, initial: int, batch: int) -> None:
        super().__init__(space, seed)
        self.initial, self.batch = initial, batch
        self.history: dict[Hashable, float] = {}
        self.queue: list[Hashable] = []
        self.asked = 0

    @abstractmethod
    def _propose(self) -> list[Hashable]:
        """The next batch, best first (at least one architecture)."""

    def ask(self) -> Hashable:
        self.asked += 1
        if self.asked <= self.initial or len(self.history) < 2:
            return self.space.sample(self.rng)
        while self.queue:
            arch = self.queue.pop(0)
            if arch not in self.history:
                return arch
        self.queue = self._propose()
        return self.queue.pop(0)

    def tell(self, arch: Hashable, score: float) -> None:
        self.history[arch] = score

    def best(self, k: int) -> list[Hashable]:
        """The ``k`` best architectures evaluated so far, best first."""
        return sorted(self.history, key=lambda a: -self.history[a])[:k]

    def thompson(self, pool: list[Hashable], mean: np.ndarray, std: np.ndarray) -> list[Hashable]:
        """Independent Thompson sampling: the ``batch`` candidates with the highest draw from their own predictive
        normal (White, Neiswanger & Savani 2021)."""
        draws = self.rng.normal(mean, std + 1e-9)
        return [pool[i] for i in np.argsort(-draws, kind="stable")[: self.batch]]
