import numpy as np
import pytest
import torch

from nas.oneshot.darts_supernet import DartsSupernet
from nas.oneshot.darts_supernet import derive as derive_darts
from nas.oneshot.nb201_supernet import NB201Supernet
from nas.oneshot.nb201_supernet import derive as derive_nb201
from nas.spaces.darts import DartsSpace, Genotype
from nas.spaces.darts.arch import PRIMITIVES
from nas.spaces.nb201 import OP_NAMES, NB201Arch, NetworkConfig
from nas.training import init_model


def test_nb201_derive_takes_each_edge_strongest_op_none_included():
    alpha = torch.zeros(6, 5)
    best = [3, 0, 1, 4, 2, 3]
    alpha[range(6), best] = torch.tensor([0.5, 2.0, 0.1, 1.0, 0.3, 0.01])
    assert derive_nb201(alpha) == NB201Arch(tuple(OP_NAMES[k] for k in best))
    assert derive_nb201(alpha.numpy()) == derive_nb201(alpha)


def _edge(step: int, source: int) -> int:
    return step * (step + 3) // 2 + source


def test_darts_derive_follows_dartss_parse():
    alpha = torch.zeros(14, 8)
    op = {name: k for k, name in enumerate(PRIMITIVES)}
    # node 2: both inputs; edge 0 is dominated by `none`, its best live op still wins there
    alpha[_edge(0, 0), op["none"]], alpha[_edge(0, 0), op["sep_conv_3x3"]] = 5.0, 2.0
    alpha[_edge(0, 1), op["skip_connect"]] = 3.0
    # node 3: input 1's `none` is huge, which leaves its live ops weak after softmax: inputs 0 and 2 win
    alpha[_edge(1, 0), op["dil_conv_3x3"]] = 4.0
    alpha[_edge(1, 1), op["none"]], alpha[_edge(1, 1), op["max_pool_3x3"]] = 10.0, 1.0
    alpha[_edge(1, 2), op["avg_pool_3x3"]] = 2.0
    # node 4: a tie between inputs 1 and 3 beats the uniform rows
    alpha[_edge(2, 1), op["max_pool_3x3"]] = alpha[_edge(2, 3), op["sep_conv_5x5"]] = 3.0
    # node 5: all uniform: the first two inputs, each with the first live op
    genotype = derive_darts(alpha, alpha)
    assert genotype.normal == (("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 0), ("avg_pool_3x3", 2),
                               ("max_pool_3x3", 1), ("sep_conv_5x5", 3), ("max_pool_3x3", 0), ("max_pool_3x3", 1))
    assert genotype.reduce == genotype.normal and genotype.normal_concat == (2, 3, 4, 5)


def test_darts_derive_never_picks_none_and_gives_two_distinct_inputs_per_node():
    rng = np.random.default_rng(0)
    for _ in range(20):
        normal, reduce = rng.normal(size=(2, 14, 8)) * 3
        normal[:, 0] += 5  # `none` strongest everywhere
        genotype = derive_darts(normal, reduce)
        assert DartsSpace().is_valid(genotype)
        for cell in (genotype.normal, genotype.reduce):
            assert "none" not in {op for op, _ in cell}
            assert all(cell[k][1] != cell[k + 1][1] for k in range(0, 8, 2))


def test_the_alpha_heatmap_outlines_the_edges_the_derived_darts_cell_keeps():
    """Not each edge's strongest op (``none`` on all 14 here): the 8 (edge, op) pairs of the derived cell."""
    from nas.reports.plots import outlined

    rng = np.random.default_rng(1)
    normal, reduce = rng.normal(size=(2, 14, 8))
    normal[:, 0] += 5  # `none` strongest everywhere
    probs = torch.as_tensor(normal).softmax(-1).numpy()
    genotype = derive_darts(normal, reduce)
    kept = outlined(probs, DartsSupernet.arch_weights(genotype)["normal"])
    labels, ops = DartsSupernet.labels()["normal"]
    assert sorted((ops[c], int(labels[r].split("->")[0])) for r, c in kept) == sorted(genotype.normal)
    assert {c for _, c in outlined(probs)} == {0}  # what it outlined before: `none`, on every edge


@pytest.mark.parametrize("supernet, arch_type", [(NB201Supernet, NB201Arch), (DartsSupernet, Genotype)])
def test_supernets_classify_8x8_inputs_and_derive_an_arch(supernet, arch_type):
    net = init_model(lambda: supernet(NetworkConfig(4, 1, 1, 10)), seed=0)
    g = torch.Generator().manual_seed(0)
    alphas = {name: torch.randn(shape, generator=g) for name, shape in net.alpha_shapes.items()}
    logits = net(torch.randn(3, 1, 8, 8, generator=g), {name: a.softmax(-1) for name, a in alphas.items()})
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()
    assert isinstance(net.derive(alphas), arch_type)


def test_darts_supernet_has_dartss_layout():
    net = DartsSupernet(NetworkConfig(4, 2, 1, 10))
    assert [cell.reduction for cell in net.cells] == [False, False, True, False, False, True, False, False]
    assert net.stem[0].out_channels == 12 and net.classifier.in_features == 4 * 16
    assert all(len(cell.edges) == 14 for cell in net.cells)
