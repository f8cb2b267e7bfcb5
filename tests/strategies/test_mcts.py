import numpy as np

from nas.spaces import SPACES
from nas.strategies.mcts import MCTS

space = SPACES["nb201"]


def test_never_proposes_an_evaluated_architecture_while_unseen_ones_remain():
    mcts = MCTS(space, seed=0)
    proposals = []
    for _ in range(300):
        arch = mcts.ask()
        proposals.append(arch)
        mcts.tell(arch, float(np.random.default_rng(len(proposals)).random()))
    assert len(set(proposals)) == 300


def test_statistics_are_kept_along_the_path():
    mcts = MCTS(space, seed=0)
    arch = mcts.ask()
    mcts.tell(arch, 0.7)
    path = tuple(space.to_params(arch)[name] for name, _ in mcts.decisions)
    assert mcts.visits[()] == 1 and all(mcts.visits[path[:d]] == 1 for d in range(7))
    assert mcts.total[path] == 0.7 and mcts.distinct[path[:3]] == 1


def test_exhausts_a_tiny_subtree_and_then_moves_on():
    """With every op of the last edge tried under one prefix, that prefix's subtree is skipped."""
    mcts = MCTS(space, seed=1)
    first = mcts.ask()
    mcts.tell(first, 1.0)
    ops = list(first.ops)
    for op in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"):
        mcts.tell(type(first)((*ops[:5], op)), 1.0)  # same prefix, each op on the last edge
    prefix = tuple(ops[:5])
    assert mcts.distinct[prefix] == 5
    for _ in range(50):
        arch = mcts.ask()
        assert tuple(arch.ops[:5]) != prefix
        mcts.tell(arch, 0.0)
