import numpy as np
import pytest

from nas.neat.evolution import Evolution, NEATConfig


class Numbers:
    """A toy domain: genes carry numbers, values differ by their absolute difference."""

    def mutate(self, genome, rng):
        key = list(genome)[int(rng.integers(len(genome)))]
        return {**genome, key: genome[key] + 1}

    def value_distance(self, key, a, b):
        return abs(a - b)

    def combine(self, key, a, b, rng):
        return a if rng.random() < 0.5 else b


def evolution(population, **config):
    return Evolution(Numbers(), population, NEATConfig(population_size=len(population), **config),
                     np.random.default_rng(0))


def test_distance_counts_excess_disjoint_and_value_differences():
    a = {"g1": 0.0, "g2": 0.0, "g3": 1.0}
    b = {"g1": 2.0, "g3": 1.0, "g4": 0.0, "g5": 0.0}
    ev = evolution([a, b], c1=1.0, c2=10.0, c3=0.5)
    # innovation order g1, g2, g3, g4, g5: g2 is disjoint (inside b's range), g4 and g5 are excess for a
    assert ev.distance(a, b) == pytest.approx(1.0 * 2 + 10.0 * 1 + 0.5 * (2.0 + 0.0) / 2)
    assert ev.distance(a, a) == 0.0


def test_crossover_takes_every_gene_of_the_fitter_parent_and_only_those():
    fitter = {"g1": 1.0, "g2": 1.0, "g4": 1.0}
    other = {"g1": 2.0, "g3": 2.0}
    ev = evolution([fitter, other])
    children = [ev.crossover(fitter, other) for _ in range(50)]
    assert all(set(c) == set(fitter) for c in children)
    assert {c["g1"] for c in children} == {1.0, 2.0}  # matching genes come from either parent
    assert all(c["g2"] == 1.0 and c["g4"] == 1.0 for c in children)


def test_speciation_groups_by_compatibility():
    near = [{"a": 0.0, "b": float(i) * 0.1} for i in range(5)]
    far = [{"x": 0.0, "y": 0.0, "z": 0.0, "w": float(i) * 0.1} for i in range(5)]
    ev = evolution(near + far, threshold=1.0)
    ev.speciate()
    assert sorted(sorted(s.members) for s in ev.species) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_offspring_are_shared_in_proportion_to_mean_fitness_and_fill_the_population():
    assert Evolution._allocate(np.array([3.0, 1.0]), 8) == [6, 2]
    assert sum(Evolution._allocate(np.array([1.0, 1.0, 1.0]), 10)) == 10
    near = [{"a": 0.0} for _ in range(6)]
    far = [{"x": 0.0, "y": 0.0, "z": 0.0, "w": 0.0} for _ in range(6)]
    ev = evolution(near + far, threshold=1.0)
    children = ev.advance([3.0] * 6 + [1.0] * 6)
    assert len(children) == 12 and ev.generation == 1
    assert sum("a" in c for c in children) == 9  # mean fitness 3 vs 1 -> 9 and 3 offspring
    assert near[0] in children  # a species of six keeps its champion unchanged


def test_advance_rejects_a_wrong_number_of_fitness_values():
    ev = evolution([{"a": 0.0}, {"a": 1.0}])
    with pytest.raises(ValueError, match="1 fitness values for 2 genomes"):
        ev.advance([1.0])


def test_a_population_that_stops_improving_breeds_only_its_top_two_species():
    """Section 4.1: no new population best for ``population_stagnation`` generations, and only the top two species
    reproduce, half the offspring each; then the count starts again."""
    species = {"a": 3.0, "x": 2.0, "p": 1.0}  # a genome's fitness is its species', so the best never improves
    population = [{"a": 0.0}] * 4 + [{"x": 0.0, "y": 0.0, "z": 0.0, "w": 0.0}] * 4 + [{"p": 0.0, "q": 0.0}] * 4
    ev = evolution(population, threshold=2.0, stagnation=100, population_stagnation=3, interspecies=0.0)

    def fitness(genomes):
        return [next(value for gene, value in species.items() if gene in g) for g in genomes]

    bred = []
    for _ in range(5):
        children = ev.advance(fitness(ev.population))
        bred.append(tuple(fitness(children).count(value) for value in species.values()))
    assert bred[:3] == [(6, 4, 2)] * 3  # offspring in proportion 3:2:1
    assert bred[3] == (6, 6, 0)  # generation 3: three generations without a new best
    assert bred[4] == (7, 5, 0) and ev.improved_at == 3  # the count starts again
