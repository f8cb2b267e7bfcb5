import numpy as np
import pytest
import torch

from nas.spaces import SPACES, Layer, MacroArch, NetworkConfig
from nas.spaces.macro import MacroSpace, decode, encode
from tests.spaces import corrupted

space = SPACES["macro"]


def archs(n: int, seed: int = 0) -> list[MacroArch]:
    rng = np.random.default_rng(seed)
    return [space.sample(rng) for _ in range(n)]


def test_string_and_repr_round_trip():
    for arch in archs(200):
        assert decode(encode(arch)) == arch
        assert eval(repr(arch), {"MacroArch": MacroArch, "Layer": Layer}) == arch
        assert space.from_params(space.to_params(arch)) == arch


def test_canonical_string_names_only_what_each_op_has():
    arch = decode("conv:k3:w2:s1 | max_pool:k5:s2 | identity:concat(0,1) | sep_conv:k5:w4:s1:sum(2)")
    assert arch.layers[1] == Layer("max_pool", kernel=5, stride=2)
    assert arch.layers[2] == Layer("identity", skips=(0, 1), merge="concat")
    assert encode(arch) == "conv:k3:w2:s1 | max_pool:k5:s2 | identity:concat(0,1) | sep_conv:k5:w4:s1:sum(2)"


@pytest.mark.parametrize("text", [
    "conv:k3:s1",  # a convolution needs a width
    "max_pool:k3:w2:s1",  # a pool has no width
    "identity:k3",  # identity has no kernel
    "conv:k7:w1:s1",  # no such kernel
    "conv:k3:w1:s1 | conv:k3:w1:s1:sum(1)",  # layer 2 reads output 1 already: a skip must come from further back
    "lstm:k3:w1:s1",
    "conv:k3:w1:s1:avg(0)",
])
def test_bad_strings_are_rejected(text):
    with pytest.raises(ValueError):
        decode(text)


def test_depth_is_bounded_by_the_space():
    deep = " | ".join(["conv:k3:w1:s1"] * 7)
    with pytest.raises(ValueError, match="at most 6"):
        space.decode(deep)
    assert MacroSpace(max_layers=8).is_valid(decode(deep)) and not space.is_valid(decode(deep))


ARCH = decode("conv:k3:w1:s1 | max_pool:k3:s2 | sep_conv:k5:w2:s1:sum(0)")
CONV, POOL, SEP = ARCH.layers


@pytest.mark.parametrize("bad", [
    corrupted(ARCH, layers=(CONV, POOL, corrupted(SEP, op="lstm"))),
    corrupted(ARCH, layers=(corrupted(CONV, width=None), POOL, SEP)),  # a convolution without a width
    corrupted(ARCH, layers=(CONV, corrupted(POOL, width=2), SEP)),  # a pool with one
    corrupted(ARCH, layers=(CONV, POOL, corrupted(SEP, kernel=7))),
    corrupted(ARCH, layers=(CONV, POOL, corrupted(SEP, merge=None))),  # skips but no merge
    corrupted(ARCH, layers=(CONV, POOL, corrupted(SEP, skips=(2,)))),  # layer 3 reads output 2 already
    corrupted(ARCH, layers=(CONV, POOL, corrupted(SEP, skips=[0]))),  # unhashable: not a value
    corrupted(ARCH, layers=list(ARCH.layers)),
    corrupted(ARCH, layers=()),
    encode(ARCH),
])
def test_is_valid_rejects_what_the_constructors_would(bad):
    assert space.is_valid(ARCH) and not space.is_valid(bad)


def test_mutate_changes_exactly_one_decision_the_architecture_has():
    rng = np.random.default_rng(1)
    for arch in archs(100, seed=2):
        child = space.mutate(arch, rng)
        assert child != arch and space.is_valid(child)
        before, after = space.to_params(arch), space.to_params(child)
        shared = set(space.active(before)) & set(space.active(after))
        changed = [k for k in shared if before[k] != after[k]]
        assert len(changed) == 1 or (changed == [] and set(space.active(before)) != set(space.active(after)))


def test_neighbors_are_distinct_and_one_decision_away():
    arch = decode("conv:k3:w1:s1 | avg_pool:k3:s2 | dil_conv:k5:w2:s1:sum(0)")
    neighbors = space.neighbors(arch)
    assert len(neighbors) == len(set(neighbors)) and arch not in neighbors
    params = space.to_params(arch)
    for n in neighbors:
        other = space.to_params(n)
        shared = set(space.active(params)) & set(space.active(other))
        assert sum(params[k] != other[k] for k in shared) == 1


@pytest.mark.parametrize("shape", [(2, 1, 8, 8), (2, 3, 32, 32), (2, 1, 28, 28)])
def test_every_sampled_architecture_builds_and_runs(shape):
    config = NetworkConfig(channels=4, cells_per_stage=1, in_channels=shape[1], num_classes=7)
    for arch in archs(25, seed=shape[2]):
        assert space.build(arch, config)(torch.randn(shape)).shape == (2, 7)


def test_skips_sum_with_projection_or_concatenate():
    config = NetworkConfig(channels=4, in_channels=1, num_classes=3)
    residual = space.build(decode("conv:k3:w2:s2 | conv:k3:w1:s1:sum(0)"), config)
    dense = space.build(decode("conv:k3:w2:s2 | identity:concat(0)"), config)
    assert residual(torch.randn(2, 1, 8, 8)).shape == dense(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert dense.classifier.in_features == 4 * 2 + 4  # identity keeps the concatenation: 8 + 4 channels
    chain = space.build(decode("identity | identity"), config)
    assert chain.classifier.in_features == 4


def test_features_have_a_fixed_length_and_mark_only_active_decisions():
    lengths = {space.features(a).shape for a in archs(50)}
    assert len(lengths) == 1
    one = decode("identity")
    assert space.features(one).sum() == 2  # depth and op: identity has nothing else
    paths = space.path_features(decode("conv:k3:w1:s1 | conv:k3:w1:s1:sum(0)"))
    assert paths.shape == (256,) and paths.sum() == 2  # stem->1->2 and stem->2


def test_define_by_run_suggests_only_the_decisions_an_architecture_has():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        arch = space.suggest(trial)
        assert set(trial.params) == set(space.active(space.to_params(arch)))
        study.tell(trial, 0.0)


def test_neat_genes_complexify_from_one_layer():
    rng = np.random.default_rng(0)
    genes = space.minimal_genes(rng)
    assert len(space.from_genes(genes).layers) == 1
    for _ in range(40):
        genes = space.grow(genes, rng)
    arch = space.from_genes(genes)
    assert len(arch.layers) == space.max_layers and any(layer.skips for layer in arch.layers)
    assert space.is_valid(arch)
