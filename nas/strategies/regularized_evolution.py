"""Regularized (aging) evolution (Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019).

The one idea: a tournament picks the parent, but the individual removed each cycle is the *oldest*, not the worst,
so every architecture must keep being re-discovered to stay in the population.

Defaults: a population of 20 and tournaments of 10, where the paper has P = 100, S = 25 for 20,000 models. A search
here evaluates about 100 architectures: with P = 100 it would never leave its random first phase.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Annotated

from annotated_types import Ge

from nas.strategies.base import Strategy


def check_tournament(population_size: int, sample_size: int) -> None:
    """The checks on aging evolution's options, shared with its multi-objective variant."""
    if population_size < 2:
        raise ValueError("population_size must be an integer >= 2")
    if sample_size < 1:
        raise ValueError("sample_size must be an integer >= 1")
    if sample_size > population_size:
        raise ValueError(f"sample_size must be at most population_size ({population_size})")


class RegularizedEvolution(Strategy):
    """Args:
        population_size: P, individuals alive at once; the first P proposals are random samples.
        sample_size: S, tournament size (drawn with replacement, as in the paper's Algorithm 1).
    """

    def __init__(self, space, seed=0, population_size: Annotated[int, Ge(2)] = 20,
                 sample_size: Annotated[int, Ge(1)] = 10) -> None:
        super().__init__(space, seed)
        check_tournament(population_size, sample_size)
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[Hashable, float]] = deque()  # oldest on the left
        self.asked = 0

    def ask(self) -> Hashable:
        self.asked += 1
        self.parent = None
        if self.asked <= self.population_size or not self.population:
            return self.space.sample(self.rng)
        picks = self.rng.integers(len(self.population), size=self.sample_size)
        self.parent = max((self.population[i] for i in picks), key=lambda member: member[1])[0]
        return self.space.mutate(self.parent, self.rng)

    def tell(self, arch: Hashable, score: float) -> None:
        self.population.append((arch, score))
        if len(self.population) > self.population_size:
            self.population.popleft()
