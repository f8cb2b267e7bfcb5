"""Random search: every proposal is an independent uniform sample from the space.

The baseline every NAS paper must beat (Li & Talwalkar, "Random Search and Reproducibility for Neural Architecture
Search", UAI 2019). It remembers what it proposed, so a budgeted search never pays twice for one architecture
while unseen ones remain.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated

from annotated_types import Ge

from nas.strategies.base import Strategy


class RandomSearch(Strategy):
    def __init__(self, space, seed=0, max_resample: Annotated[int, Ge(0)] = 100) -> None:
        super().__init__(space, seed)
        if max_resample < 0:
            raise ValueError("max_resample must be an integer >= 0")
        self.max_resample = max_resample
        self.seen: set[Hashable] = set()

    def ask(self) -> Hashable:
        arch = self.space.sample(self.rng)
        for _ in range(self.max_resample):
            if arch not in self.seen:
                break
            arch = self.space.sample(self.rng)
        self.seen.add(arch)
        return arch
