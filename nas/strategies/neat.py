"""NEAT as an architecture search strategy (Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting
Topologies", 2002), the weights trained by SGD instead of evolved.

The one idea: start every genome at the minimal topology and complexify (add-node, add-connection), while
historical markings let genomes of different shapes be aligned for crossover and grouped into species, so a new
structure competes only within its niche until it has had time to be tuned. The population machinery is
``nas.neat.evolution``; the genes come from the space (``minimal_genes``, ``grow``, ``mutate_gene``,
``from_genes``): layers and skips for the macro space, the cell's edges for NB201.

A generation is asked in order and advanced once all of it is told. An architecture met before is not proposed
again: it keeps the score it got.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, Any

import numpy as np
from annotated_types import Ge, Gt, Interval

from nas.neat.evolution import Evolution, Genome, NEATConfig
from nas.strategies.base import Strategy


class SpaceGenes:
    """The NEAT ``Domain`` of a search space's genes."""

    def __init__(self, space: Any, grow_rate: float) -> None:
        self.space, self.grow_rate = space, grow_rate

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        if rng.random() < self.grow_rate:
            grown = self.space.grow(genome, rng)
            if grown != genome:
                return grown
        keys = list(genome)
        key = keys[int(rng.integers(len(keys)))]
        return {**genome, key: self.space.mutate_gene(key, genome[key], rng)}

    def value_distance(self, key: Hashable, a: Any, b: Any) -> float:
        return float(a != b)

    def combine(self, key: Hashable, a: Any, b: Any, rng: np.random.Generator) -> Any:
        return a if rng.random() < 0.5 else b


class NEAT(Strategy):
    """Args:
        population_size: genomes per generation.
        threshold: compatibility threshold delta_t (with c1 = c2 = 1 on excess/disjoint genes, c3 on changed ones).
        grow_rate: fraction of mutations that are structural (add-node or add-connection).
    """

    def __init__(self, space, seed=0, population_size: Annotated[int, Ge(2)] = 20,
                 threshold: Annotated[float, Gt(0)] = 2.0, c3: Annotated[float, Ge(0)] = 0.5,
                 grow_rate: Annotated[float, Interval(ge=0, le=1)] = 0.3) -> None:
        super().__init__(space, seed)
        if population_size < 2:
            raise ValueError("population_size must be an integer >= 2")
        if threshold <= 0:
            raise ValueError("threshold must be a number > 0")
        if not 0 <= grow_rate <= 1:
            raise ValueError("grow_rate must be a number >= 0 and <= 1")
        if c3 < 0:
            raise ValueError("c3 must be a number >= 0")
        config = NEATConfig(population_size=population_size, threshold=threshold, c3=c3)
        self.domain = SpaceGenes(space, grow_rate)
        initial = [space.minimal_genes(self.rng) for _ in range(population_size)]
        self.evolution = Evolution(self.domain, initial, config, self.rng)
        self.next = 0  # next genome of the generation to propose
        self.scores: list[float | None] = [None] * population_size
        self.pending: list[tuple[int, Hashable]] = []
        self.known: dict[Hashable, float] = {}
        self.extra: set[Hashable] = set()  # proposed outside the generation
        self.lowest = 0.0  # min(0, the lowest score told): see _advance

    @property
    def generation(self) -> int:
        return self.evolution.generation

    def ask(self) -> Hashable:
        stale = 0  # generations in a row with nothing new to evaluate
        while True:
            population = self.evolution.population
            if self.next == len(population):
                if self.pending or stale > 100:  # parallel workers outran the generation, or nothing new is bred
                    genome = population[int(self.rng.integers(len(population)))]
                    arch = self.space.from_genes(self.domain.mutate(genome, self.rng))
                    self.extra.add(arch)
                    return arch
                self._advance()
                stale += 1
                continue
            index, self.next = self.next, self.next + 1
            arch = self.space.from_genes(population[index])
            if arch in self.known:
                self.scores[index] = self.known[arch]
                continue
            self.pending.append((index, arch))
            return arch

    def tell(self, arch: Hashable, score: float) -> None:
        self.known[arch] = score
        if arch in self.extra:  # not a member of the generation
            self.extra.discard(arch)
            return
        matched = [p for p in self.pending if p[1] == arch] or self.pending[:1]  # the log is the truth
        for index, _ in matched:
            self.scores[index] = score
        self.pending = [p for p in self.pending if p not in matched]

    def _advance(self) -> None:
        scores = np.asarray(self.scores, dtype=float)
        # Fitness sharing needs fitness >= 0, and the stagnation check compares a species' best across generations:
        # the scores themselves (accuracies), or, where some are negative, shifted by the lowest score told so far (a
        # shift that moves only when a new lowest comes). Shifting by each generation's worst, as this did, left that
        # generation's worst species no offspring and hid a rising species' progress from the stagnation check.
        self.lowest = min(self.lowest, float(scores.min()))
        self.evolution.advance((scores - self.lowest).tolist())
        self.next = 0
        self.scores = [None] * len(self.evolution.population)
