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
