import numpy as np

from nas.spaces import SPACES
from nas.strategies import REINFORCE


def test_policy_learns_to_prefer_the_rewarded_op():
    space = SPACES["nb201"]
    strategy = REINFORCE(space, seed=0)
    early, late = [], []
    for step in range(300):
        arch = strategy.ask()
        (early if step < 50 else late).append(arch.ops.count("nor_conv_3x3"))
        strategy.tell(arch, float(arch.ops.count("nor_conv_3x3")))
    assert np.mean(late[-50:]) > np.mean(early) + 2  # from ~1.2 of 6 edges at random towards all six


def test_baseline_tracks_the_scores():
    space = SPACES["nb201"]
    strategy = REINFORCE(space, seed=0, baseline_decay=0.5)
    for _ in range(20):
        strategy.tell(strategy.ask(), 7.0)
    assert abs(strategy.baseline - 7.0) < 1e-6


def test_conditional_decisions_of_absent_layers_are_not_trained():
    space = SPACES["macro"]
    strategy = REINFORCE(space, seed=0, lr=0.1)
    head = strategy.names.index("layer6_op")
    before = strategy.controller.heads[head].weight.detach().clone()
    for _ in range(10):
        arch = space.decode("conv:k3:w1:s1")
        strategy.ask()
        strategy.tell(arch, 1.0)
        strategy.tell(space.decode("identity"), 0.0)
    assert (strategy.controller.heads[head].weight == before).all()


def test_advantages_are_scaled_by_the_spread_of_the_scores_from_the_first_deviation_on():
    """The spread's moving average is bias-corrected: after scores 0 and 1 it is 1, not 0.1 (which made the second
    update ten times a normal one)."""
    strategy = REINFORCE(SPACES["nb201"], seed=0)
    strategy.tell(strategy.ask(), 0.0)
    strategy.tell(strategy.ask(), 1.0)
    assert strategy.scale == 1.0
    for _ in range(50):
        strategy.tell(strategy.ask(), 0.5)
    assert 0 < strategy.scale < 0.5  # the deviations shrink as the baseline reaches the scores
