from graphlib import TopologicalSorter

import numpy as np

from nas.neat.xor import BIAS, OUTPUT, WeightedNetworks, hidden_nodes, solve_xor, xor_fitness


def test_a_hand_built_xor_network_solves_the_task():
    # hidden 4 = OR, hidden 5 = AND, output = OR and not AND (steepened sigmoid, weights large enough)
    genome = {
        (0, 4): (2.0, True), (1, 4): (2.0, True), (BIAS, 4): (-1.0, True),
        (0, 5): (2.0, True), (1, 5): (2.0, True), (BIAS, 5): (-3.0, True),
        (4, OUTPUT): (3.0, True), (5, OUTPUT): (-3.0, True), (BIAS, OUTPUT): (-1.0, True),
    }
    fitness, solved = xor_fitness(genome)
    assert solved and fitness > 15.0 and hidden_nodes(genome) == 2
    assert not xor_fitness({**genome, (5, OUTPUT): (-3.0, False)})[1]  # a disabled gene does not conduct


def test_add_node_splits_a_connection_the_neat_way_and_reuses_the_innovation():
    domain = WeightedNetworks()
    rng = np.random.default_rng(0)
    genome = {(0, OUTPUT): (0.7, True)}
    split = domain._add_node(genome, rng)
    node = next(n for (a, n) in split if a == 0 and n != OUTPUT)
    assert split[(0, OUTPUT)] == (0.7, False) and split[(0, node)] == (1.0, True) and split[(node, OUTPUT)] == (0.7, True)
    assert domain._add_node(genome, rng) == split  # the same split elsewhere gets the same node id


def test_add_link_keeps_networks_feed_forward():
    domain = WeightedNetworks()
    rng = np.random.default_rng(1)
    genome = domain.initial(rng)
    for _ in range(60):
        genome = domain._add_node(genome, rng) if rng.random() < 0.3 else domain._add_link(genome, rng)
    graph = TopologicalSorter()
    for source, target in genome:  # disabled genes too: a crossover may enable them again
        graph.add(target, source)
    graph.prepare()  # raises CycleError on a cycle
    assert len(genome) > 20 and all(target not in (0, 1, BIAS) and source != OUTPUT for source, target in genome)


def test_xor_is_solved_with_hidden_nodes():
    results = [solve_xor(seed) for seed in range(3)]
    assert all(r.solved and r.hidden_nodes >= 1 for r in results)
    assert solve_xor(0) == results[0]  # seeded
