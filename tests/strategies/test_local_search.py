import numpy as np

from nas.spaces import SPACES
from nas.strategies.local_search import LocalSearch

space = SPACES["nb201"]


def test_walks_to_better_neighbours_and_restarts_at_a_local_optimum():
    target = space.sample(np.random.default_rng(9))

    def score(arch):  # a single peak: the number of edges that match the target
        return float(sum(a == b for a, b in zip(arch.ops, target.ops)))

    ls = LocalSearch(space, seed=0)
    first = ls.ask()
    ls.tell(first, score(first))
    for _ in range(200):
        before = ls.current
        arch = ls.ask()
        assert arch in space.neighbors(before[0])  # no restart on the way up a single peak
        ls.tell(arch, score(arch))
        if ls.current[0] == target:
            break
    assert ls.current[0] == target  # hill climbing reaches the single peak
    arch = ls.ask()  # every neighbour of the peak is worse: after they are tried, a random restart
    neighbours = set(space.neighbors(target))
    tried = 0
    while arch in neighbours:
        ls.tell(arch, score(arch))
        tried += 1
        arch = ls.ask()
    assert ls.current is None and tried <= len(neighbours)
