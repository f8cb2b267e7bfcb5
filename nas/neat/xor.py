"""Classic NEAT, which evolves the weights and the topology of small networks, and the paper's XOR experiment
(Stanley & Miikkulainen 2002, section 4.1): population 150, networks start with the two inputs and a bias
connected straight to one output and no hidden node, fitness ``(4 - sum of errors)**2``; the paper reports a
solution after 32 generations on average over 100 runs (4,755 evaluations, 2.35 hidden nodes).

A genome holds connection genes only, ``(source, target) -> (weight, enabled)``; nodes are the connections'
ends. Node ids: 0 and 1 are the inputs, 2 the bias, 3 the output; a hidden node's id is given by the connection
whose split first made it, so the same split in two genomes makes the same node (its historical marking)::

    >>> result = solve_xor(seed=0)
    >>> result.solved
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nas.neat.evolution import Evolution, Genome, NEATConfig

INPUTS, BIAS, OUTPUT = (0, 1), 2, 3
XOR_CASES = (((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0))


@dataclass(frozen=True)
class MutationRates:
    """The paper's rates (section 4.1); perturbations are uniform in +-``weight_power``."""

    add_node: float = 0.03
    add_link: float = 0.3  # the paper's rate for larger populations (0.05 for small ones)
    weights: float = 0.8
    perturb: float = 0.9  # of mutated weights; the others get a new random value
    weight_power: float = 2.5  # perturbations
    new_weight: float = 2.5  # range of new random weights
    initial_weight: float = 1.0
    average: float = 0.0  # matching genes whose child weight is the parents' mean


class WeightedNetworks:
    """The NEAT ``Domain`` of weighted feed-forward networks."""

    def __init__(self, rates: MutationRates = MutationRates()) -> None:
        self.rates = rates
        self.split_nodes: dict[tuple[int, int], int] = {}
        self.next_node = OUTPUT + 1

    def initial(self, rng: np.random.Generator) -> Genome:
        w = self.rates.initial_weight
        return {(source, OUTPUT): (float(rng.uniform(-w, w)), True) for source in (*INPUTS, BIAS)}

    def mutate(self, genome: Genome, rng: np.random.Generator) -> Genome:
        r = self.rates
        if rng.random() < r.add_node:
            return self._add_node(genome, rng)
        if rng.random() < r.add_link:
            return self._add_link(genome, rng)
        if rng.random() < r.weights:
            child = {}
            for key, (weight, enabled) in genome.items():
                if rng.random() < r.perturb:
                    weight += float(rng.uniform(-r.weight_power, r.weight_power))
                else:
                    weight = float(rng.uniform(-r.new_weight, r.new_weight))
                child[key] = (weight, enabled)
            return child
        return dict(genome)

    def _add_node(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """Split an enabled connection a->b: a->new gets weight 1, new->b the old weight, a->b is disabled."""
        enabled = [key for key, (_, on) in genome.items() if on]
        if not enabled:
            return dict(genome)
        source, target = enabled[int(rng.integers(len(enabled)))]
        node = self.split_nodes.get((source, target))
        if node is None or (source, node) in genome or (node, target) in genome:
            node = self.split_nodes[(source, target)] = self.next_node  # a new innovation
            self.next_node += 1
        weight = genome[(source, target)][0]
        return {**genome, (source, target): (weight, False), (source, node): (1.0, True),
                (node, target): (weight, True)}

    def _add_link(self, genome: Genome, rng: np.random.Generator) -> Genome:
        """Connect two unconnected nodes, keeping the network feed-forward."""
        nodes = sorted({n for key in genome for n in key} | {*INPUTS, BIAS, OUTPUT})
        candidates = [(a, b) for a in nodes for b in nodes
                      if a != b and a != OUTPUT and b not in (*INPUTS, BIAS) and (a, b) not in genome
                      and not _reaches(genome, b, a)]
        if not candidates:
            return dict(genome)
        key = candidates[int(rng.integers(len(candidates)))]
        w = self.rates.new_weight
        return {**genome, key: (float(rng.uniform(-w, w)), True)}

    def value_distance(self, key, a, b) -> float:
        return abs(a[0] - b[0])

    def combine(self, key, a, b, rng: np.random.Generator):
        weight, _ = a if rng.random() < 0.5 else b
        if rng.random() < self.rates.average:
            weight = (a[0] + b[0]) / 2
        # The paper: a gene disabled in either parent is disabled in the child with probability 0.75.
        enabled = (a[1] and b[1]) or rng.random() >= 0.75
        return weight, enabled


def _reaches(genome: Genome, start: int, goal: int) -> bool:
    """Whether enabled or disabled connections lead from ``start`` to ``goal`` (adding goal->start would cycle)."""
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(b for (a, b) in genome if a == node)
    return False


def activate(genome: Genome, inputs: tuple[float, float]) -> float:
    """The output of the network for one input, nodes fed forward in topological order (steepened sigmoid)."""
    incoming: dict[int, list[tuple[int, float]]] = {}
    for (source, target), (weight, enabled) in genome.items():
        if enabled:
            incoming.setdefault(target, []).append((source, weight))
    values = {INPUTS[0]: inputs[0], INPUTS[1]: inputs[1], BIAS: 1.0}

    def value(node: int) -> float:
        if node not in values:
            total = sum(value(source) * weight for source, weight in incoming.get(node, ()))
            values[node] = 1.0 / (1.0 + math.exp(-4.9 * max(-60.0, min(60.0, total))))
        return values[node]

    return value(OUTPUT)


def xor_fitness(genome: Genome) -> tuple[float, bool]:
    """``(4 - sum |output - target|)**2`` and whether every case is on the right side of 0.5."""
    outputs = [activate(genome, x) for x, _ in XOR_CASES]
    error = sum(abs(o - t) for o, (_, t) in zip(outputs, XOR_CASES))
    solved = all((o >= 0.5) == (t == 1.0) for o, (_, t) in zip(outputs, XOR_CASES))
    return (4.0 - error) ** 2, solved


def hidden_nodes(genome: Genome) -> int:
    return len({n for key, (_, on) in genome.items() if on for n in key} - {*INPUTS, BIAS, OUTPUT})


@dataclass(frozen=True)
class XORResult:
    solved: bool
    generations: int  # the generation (1-based) in which the first solution appeared
    evaluations: int
    hidden_nodes: int
    connections: int  # enabled connections of the solution


# The paper's settings, except the compatibility threshold: with delta_t = 3.0 and new links at 0.05, this
# implementation needed ~94 generations on average (40 runs); delta_t = 2.0 and the paper's large-population link
# rate give the paper's result (benchmarks/neat_xor.py).
XOR_CONFIG = NEATConfig(threshold=2.0)


def solve_xor(seed: int, config: NEATConfig = XOR_CONFIG, rates: MutationRates = MutationRates(),
              max_generations: int = 500) -> XORResult:
    """One run of the XOR experiment."""
    rng = np.random.default_rng(seed)
    domain = WeightedNetworks(rates)
    evolution = Evolution(domain, [domain.initial(rng) for _ in range(config.population_size)], config, rng)
    evaluations = 0
    for generation in range(1, max_generations + 1):
        fitness = []
        for genome in evolution.population:
            score, solved = xor_fitness(genome)
            evaluations += 1
            if solved:
                connections = sum(on for _, on in genome.values())
                return XORResult(True, generation, evaluations, hidden_nodes(genome), connections)
            fitness.append(score)
        evolution.advance(fitness)
    return XORResult(False, max_generations, evaluations, 0, 0)
