import re

import numpy as np
import pytest

from nas.spaces import SPACES
from nas.strategies.base import Observation, Proposal
from nas.strategies.bohb import BOHB

space = SPACES["nb201"]


def convs(arch) -> float:
    """A landscape with structure for the model to find: the number of 3x3 convolutions (random: 1.2 on average)."""
    return float(arch.ops.count("nor_conv_3x3"))


def drive(bohb: BOHB, steps: int, score=convs) -> list[Proposal]:
    """Ask and observe ``steps`` times, sequentially, as the tabular protocol does."""
    asked = []
    for _ in range(steps):
        proposal = bohb.ask()
        asked.append(proposal)
        bohb.observe(Observation(proposal.arch, (score(proposal.arch),), proposal.budget))
    return asked


def test_brackets_follow_hyperbands_schedule():
    bohb = BOHB(space, seed=0, min_budget=1, max_budget=9, eta=3)
    budgets = [p.budget for p in drive(bohb, 9 + 3 + 1 + 5 + 1 + 3 + 9)]
    # s = 2: 9 at 1, 3 at 3, 1 at 9; s = 1: ceil(3/2 * 3) = 5 at 3, 1 at 9; s = 0: 3 at 9; then s = 2 again.
    assert budgets == [1.0] * 9 + [3.0] * 3 + [9.0] + [3.0] * 5 + [9.0] + [9.0] * 3 + [1.0] * 9
    table = BOHB(space, seed=0, min_budget=12, max_budget=200, eta=200 / 12)  # the tabular bench's two rungs
    assert [p.budget for p in drive(table, 17 + 1 + 2)] == [12.0] * 17 + [200.0] + [200.0] * 2


def test_promotions_are_the_top_third_of_their_rung():
    bohb = BOHB(space, seed=1)
    first = [bohb.ask() for _ in range(9)]
    values = dict(zip((p.arch for p in first), np.random.default_rng(0).permutation(9).astype(float)))
    for p in first:
        bohb.observe(Observation(p.arch, (values[p.arch],), p.budget))
    second = [bohb.ask() for _ in range(3)]
    assert [p.arch for p in second] == sorted(values, key=values.get, reverse=True)[:3]
    assert {p.budget for p in second} == {3.0}
    # At budget 3 the order flips: the worst of the three is now the best, and only it goes on to budget 9.
    for rank, p in enumerate(second):
        bohb.observe(Observation(p.arch, (float(rank),), p.budget))
    assert bohb.ask() == Proposal(second[-1].arch, 9.0)


def test_failed_trials_rank_last_and_pruned_ones_by_their_values():
    bohb = BOHB(space, seed=2)
    first = [bohb.ask() for _ in range(9)]
    for i, p in enumerate(first):
        state = "failed" if i < 6 else "pruned"
        bohb.observe(Observation(p.arch, () if state == "failed" else (-float(i),), p.budget, state))
    assert [bohb.ask().arch for _ in range(3)] == [first[6].arch, first[7].arch, first[8].arch]


def test_a_waiting_rung_starts_the_next_bracket_and_still_promotes_when_complete():
    bohb = BOHB(space, seed=3)
    first = [bohb.ask() for _ in range(9)]
    extra = bohb.ask()  # bracket 1's rung waits on nine observations: bracket 2 (s = 1) starts at budget 3
    assert extra.budget == 3.0 and extra.arch not in {p.arch for p in first}
    for i, p in reversed(list(enumerate(first))):  # any order
        bohb.observe(Observation(p.arch, (float(i),), p.budget))
    assert bohb.ask() == Proposal(first[8].arch, 3.0)


def test_the_model_waits_for_n_min_plus_2_observations_on_the_largest_budget_that_has_them():
    bohb = BOHB(space, seed=0)
    n_min = len(space.sample(np.random.default_rng(0)).ops) + 1  # d + 1
    archs = [space.sample(np.random.default_rng(k)) for k in range(2 * (n_min + 2))]
    low, high = archs[: n_min + 2], archs[n_min + 2:]
    for i, arch in enumerate(low):
        assert bohb.model() is None
        bohb.observe(Observation(arch, (float(i),), 1.0))
    good, bad = bohb.model()
    # Good: the best max(N_min, 15 % of 9) = 7, best first; bad: the worst max(N_min, 9 - 7) = 7.
    assert len(good) == len(bad) == n_min
    assert (good == [bohb._encode(a) for a in low[::-1][:n_min]]).all()
    for i, arch in enumerate(high):  # budget 9: the opposite ranking, used once it too has N_min + 2
        assert (bohb.model()[0][0] == bohb._encode(low[-1])).all()
        bohb.observe(Observation(arch, (-float(i),), 9.0))
    assert (bohb.model()[0][0] == bohb._encode(high[0])).all()


@pytest.mark.parametrize("seed", range(3))
def test_new_configurations_from_the_model_beat_random_ones(seed):
    bohb = BOHB(space, seed=seed, random_fraction=0.0)
    modelled, proposed = [], set()
    for _ in range(150):
        ready = bohb.model() is not None
        proposal = bohb.ask()
        if ready and proposal.arch not in proposed:
            modelled.append(convs(proposal.arch))
        proposed.add(proposal.arch)
        bohb.observe(Observation(proposal.arch, (convs(proposal.arch),), proposal.budget))
    # Random architectures average 1.2 3x3 convolutions (sd 0.98: 0.1 over 100 of them).
    assert len(modelled) > 50 and np.mean(modelled) > 1.6


def test_new_configurations_are_never_repeated():
    bohb = BOHB(space, seed=4)
    asked = drive(bohb, 300)
    first_rung = [p.arch for p in asked if p.budget == 1.0]
    assert len(first_rung) == len(set(first_rung))


def test_macro_space_decisions_are_encoded_too():
    macro = SPACES["macro"]
    bohb = BOHB(macro, seed=0, random_fraction=0.0)
    asked = drive(bohb, 120, score=lambda arch: float(len(arch.layers)))
    assert bohb.model() is not None and all(macro.is_valid(p.arch) for p in asked)


def test_same_seed_same_sequence_and_replay_resumes_it():
    one, two = BOHB(space, seed=7), BOHB(space, seed=7)
    assert drive(one, 60) == drive(two, 60)
    assert drive(BOHB(space, seed=8), 60) != drive(BOHB(space, seed=7), 60)
    original = BOHB(space, seed=5)
    log = [Observation(p.arch, (convs(p.arch),), p.budget) for p in drive(original, 40)]  # stops mid-bracket
    resumed = BOHB(space, seed=5)
    resumed.replay(log)
    assert drive(resumed, 60) == drive(original, 60)


def test_tell_without_a_budget_is_told_at_the_proposals():
    bohb = BOHB(space, seed=0)
    proposal = bohb.ask()
    bohb.tell(proposal.arch, 1.5)
    assert bohb.observed == {1.0: {proposal.arch: 1.5}}


@pytest.mark.parametrize("options,message", [
    ({"min_budget": 10, "max_budget": 9}, "min_budget must be at most max_budget (9)"),
    ({"min_budget": 0}, "min_budget must be a number > 0"),
    ({"eta": 1}, "eta must be a number > 1"),
    ({"random_fraction": 1.5}, "random_fraction must be a number >= 0 and <= 1"),
    ({"candidates": 0}, "candidates must be an integer >= 1"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        BOHB(space, **options)


def test_one_budget_is_random_search_with_a_model():
    bohb = BOHB(space, seed=0, min_budget=9, max_budget=9)
    assert bohb.s_max == 0 and {p.budget for p in drive(bohb, 20)} == {9.0}
