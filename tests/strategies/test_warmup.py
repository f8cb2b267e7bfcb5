import zlib

import numpy as np
import pytest

from nas.spaces import SPACES
from nas.strategies.base import Observation, Proposal, Strategy
from nas.strategies.local_search import LocalSearch
from nas.strategies.regularized_evolution import RegularizedEvolution
from nas.strategies.warmup import WarmStarted

space = SPACES["nb201"]
TARGET = space.sample(np.random.default_rng(99))
WARM = [space.sample(np.random.default_rng(100 + i)) for i in range(6)]


def score(arch) -> float:  # one peak: edges that match TARGET, a tie-breaking fraction so no two scores are equal
    return float(sum(a == b for a, b in zip(arch.ops, TARGET.ops))) + (zlib.crc32(str(arch).encode()) % 997) / 1e4


def run(strategy, steps):
    history = []
    for _ in range(steps):
        arch = strategy.ask()
        history.append((arch, score(arch)))
        strategy.tell(arch, history[-1][1])
    return history


STRATEGIES = {
    "regularized_evolution": lambda seed: RegularizedEvolution(space, seed, population_size=6, sample_size=3),
    "local_search": lambda seed: LocalSearch(space, seed, initial=len(WARM)),
    "local_search_initial_1": lambda seed: LocalSearch(space, seed),
}


@pytest.mark.parametrize("name", STRATEGIES)
def test_first_asks_are_the_warm_archs_then_the_inner_as_if_it_had_proposed_them(name):
    warmed, plain = WarmStarted(STRATEGIES[name](3), WARM), STRATEGIES[name](3)
    for arch in WARM:
        plain.ask()  # what the inner would have proposed, discarded: its stream and counters advance the same
        assert warmed.ask() == arch
        warmed.tell(arch, score(arch))
        plain.tell(arch, score(arch))
    assert run(warmed, 40) == run(plain, 40)


@pytest.mark.parametrize("name", STRATEGIES)
def test_replay_rebuilds_a_warm_started_strategy(name):
    original = WarmStarted(STRATEGIES[name](5), WARM)
    history = run(original, 25)
    resumed = WarmStarted(STRATEGIES[name](5), WARM)
    resumed.replay([Observation(a, (s,)) for a, s in history])
    assert run(resumed, 20) == run(original, 20)


def test_regularized_evolution_population_starts_as_the_warm_archs():
    warmed = WarmStarted(STRATEGIES["regularized_evolution"](0), WARM)
    run(warmed, len(WARM))
    assert [arch for arch, _ in warmed.population] == WARM  # the inner's, through the wrapper


@pytest.mark.parametrize("initial", [len(WARM), 1])
def test_local_search_walks_from_the_best_warm_arch(initial):
    best = max(WARM, key=score)
    assert best != WARM[0]  # so starting from it is not starting from the first
    warmed = WarmStarted(LocalSearch(space, seed=1, initial=initial), WARM)
    run(warmed, len(WARM))
    assert warmed.current[0] == best
    neighbours = set(space.neighbors(best))
    proposed = []
    for _ in range(len(neighbours)):  # all worse than the best: the walk stays at the best and tries its neighbours
        arch = warmed.ask()
        if arch not in neighbours:
            break
        proposed.append(arch)
        warmed.tell(arch, -1.0)
    # With initial=len(WARM) every neighbour is visited; with initial=1 those consumed by the warm asks are skipped.
    expected = len(neighbours) if initial == len(WARM) else len(neighbours) - (len(WARM) - 1 - WARM.index(best))
    assert len(set(proposed)) == len(proposed) >= expected


class _MultiFidelity(Strategy):
    def ask(self):
        return Proposal(self.space.sample(self.rng), 3.0)


def test_a_proposal_keeps_the_inner_budget_and_attributes_are_the_inner():
    inner = _MultiFidelity(space, seed=0)
    warmed = WarmStarted(inner, WARM[:1])
    assert warmed.ask() == Proposal(WARM[0], 3.0)
    assert isinstance(warmed.ask(), Proposal) and warmed.rng is inner.rng
    with pytest.raises(AttributeError):
        warmed.no_such_attribute  # noqa: B018 (the access is what is tested)
