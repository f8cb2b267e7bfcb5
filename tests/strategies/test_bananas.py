import numpy as np

from nas.spaces import SPACES
from nas.strategies import BANANAS
from tests.strategies.test_conformance import nb201_score


def test_after_the_initial_samples_proposals_are_unseen_neighbours_of_the_best():
    space = SPACES["nb201"]
    strategy = BANANAS(space, seed=0, initial=10, batch=5, parents=3)
    told = {}
    for _ in range(10):
        arch = strategy.ask()
        told[arch] = nb201_score(arch)
        strategy.tell(arch, told[arch])
    best = sorted(told, key=lambda a: -told[a])[:3]
    proposals = [strategy.ask() for _ in range(5)]
    assert len(set(proposals)) == 5 and not set(proposals) & set(told)
    assert all(any(p in space.neighbors(b) for b in best) for p in proposals)


def test_the_predictor_finds_better_architectures_than_random_sampling():
    space = SPACES["nb201"]
    strategy = BANANAS(space, seed=3)
    scores = []
    for _ in range(60):
        arch = strategy.ask()
        scores.append(nb201_score(arch))
        strategy.tell(arch, scores[-1])
    rng = np.random.default_rng(0)
    assert np.mean(scores[-20:]) > np.percentile([nb201_score(space.sample(rng)) for _ in range(1000)], 90)
