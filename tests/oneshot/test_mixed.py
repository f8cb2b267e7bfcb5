import pytest
import torch
from torch import nn

from nas.oneshot.base import frozen_bn_stats, gumbel_softmax
from nas.oneshot.mixed import MixedOp
from nas.oneshot.nb201_supernet import NB201Supernet
from nas.spaces.darts.arch import PRIMITIVES
from nas.spaces.nb201 import OP_NAMES, NetworkConfig
from nas.training import init_model


def _calls(module: nn.Module) -> list[int]:
    """A counter per candidate op of every MixedOp in ``module``, incremented by forward hooks."""
    counts: list[int] = []

    def counter(k: int):
        def hook(*_) -> None:
            counts[k] += 1
        return hook

    for mixed in (m for m in module.modules() if isinstance(m, MixedOp)):
        for op in mixed.ops:
            op.register_forward_hook(counter(len(counts)))
            counts.append(0)
    return counts


@pytest.mark.parametrize("names, stride, pool_bn", [(OP_NAMES, 1, False), (PRIMITIVES, 2, True)])
def test_dense_forward_is_the_weighted_sum_of_every_op(names, stride, pool_bn):
    g = torch.Generator().manual_seed(0)
    mixed = init_model(lambda: MixedOp(names, 4, stride, pool_bn), seed=0).eval()
    x, w = torch.randn(2, 4, 8, 8, generator=g), torch.rand(len(names), generator=g)
    manual = sum(w[k] * op(x) for k, op in enumerate(mixed.ops))
    assert torch.allclose(mixed(x, w), manual, atol=1e-6)
    assert mixed(x, w).shape == (2, 4, 8 // stride, 8 // stride)


def test_supernet_batchnorms_are_not_affine_and_only_darts_pools_get_one():
    for names, pool_bn in ((OP_NAMES, False), (PRIMITIVES, True)):
        mixed = MixedOp(names, 4, 1, pool_bn)
        assert all(not bn.affine for bn in mixed.modules() if isinstance(bn, nn.BatchNorm2d))
        for name, op in zip(names, mixed.ops):
            if "pool" in name:
                assert isinstance(op[-1] if isinstance(op, nn.Sequential) else op, nn.BatchNorm2d) == pool_bn


def test_hard_forward_runs_only_the_chosen_op_and_keeps_every_weight_in_the_graph():
    g = torch.Generator().manual_seed(1)
    mixed = init_model(lambda: MixedOp(OP_NAMES, 4, 1), seed=0).eval()
    calls = _calls(mixed)
    x = torch.randn(2, 4, 8, 8, generator=g)
    w = torch.rand(len(OP_NAMES), generator=g, requires_grad=True)
    out = mixed(x, w, index=3)
    assert calls == [0, 0, 0, 1, 0]
    others = sum(w[k] for k in range(len(OP_NAMES)) if k != 3)
    assert torch.allclose(out, w[3] * mixed.ops[3](x) + others, atol=1e-6)
    out.sum().backward()
    assert (w.grad != 0).all()


def test_gdas_supernet_forward_runs_one_op_per_edge_and_alpha_gets_a_gradient():
    from nas.oneshot.gdas import Gdas

    net = init_model(lambda: NB201Supernet(NetworkConfig(4, 1, 1, 10)), seed=0)
    calls = _calls(net)
    alpha = (1e-3 * torch.randn(6, 5, generator=torch.Generator().manual_seed(2))).requires_grad_()
    search = Gdas.__new__(Gdas)  # only _sample's inputs are needed
    search.alpha, search.noise_generator = {"cell": alpha}, torch.Generator().manual_seed(3)
    # A sample with `none` on an edge can disconnect the cell (constant output, zero gradient): draw until none has.
    weights, index = search._sample(tau=10.0, detach=False)
    while 0 in index["cell"]:
        weights, index = search._sample(tau=10.0, detach=False)
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    net(x, weights, index).logsumexp(1).sum().backward()
    per_edge = torch.tensor(calls).view(-1, len(OP_NAMES))  # 3 cells x 6 edges, one row each
    assert per_edge.sum(1).tolist() == [1] * 18
    assert per_edge.argmax(1).view(3, 6).tolist() == [index["cell"]] * 3  # one sample shared by the cells
    assert alpha.grad is not None and (alpha.grad.abs().sum(1) > 0).all()


def test_gumbel_softmax_is_reproducible_from_its_generator_and_sharpens_as_tau_falls():
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    a = gumbel_softmax(alpha, 1.0, torch.Generator().manual_seed(7))
    b = gumbel_softmax(alpha, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and torch.allclose(a.sum(1), torch.ones(6))
    cold = gumbel_softmax(alpha, 0.01, torch.Generator().manual_seed(7))
    assert cold.max(1).values.mean() > 0.9 > a.max(1).values.mean() and torch.equal(cold.argmax(1), a.argmax(1))


def test_frozen_bn_stats_restores_running_statistics():
    bn = nn.BatchNorm2d(3)
    with frozen_bn_stats(bn):
        bn(torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(0)) + 5)
    assert torch.equal(bn.running_mean, torch.zeros(3)) and int(bn.num_batches_tracked) == 0
