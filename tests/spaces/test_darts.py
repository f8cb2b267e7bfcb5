import numpy as np
import optuna
import pytest
import torch

from nas.spaces import SPACES, NetworkConfig
from nas.spaces.darts import DARTS_V1, DARTS_V2, PRIMITIVES, Genotype, decode, encode
from tests.spaces import corrupted

space = SPACES["darts"]

# DARTS_V2 exactly as DARTS's cnn/genotypes.py prints it (node 4's edges listed strongest first).
PUBLISHED_V2 = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")


def test_primitives_are_darts_own_in_its_order():
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                          "dil_conv_3x3", "dil_conv_5x5")


def test_published_genotype_decodes_and_pastes_back_as_code():
    arch = decode(PUBLISHED_V2)
    assert arch == DARTS_V2 != DARTS_V1
    again = eval(repr(arch), {"Genotype": Genotype})  # the repr pastes back as code
    assert again == arch and hash(again) == hash(arch) and decode(encode(arch)) == arch
    assert repr(arch).startswith("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1),")
    with pytest.raises(AttributeError):
        arch.normal = ()  # frozen


def test_a_node_is_one_value_whichever_order_its_edges_are_listed_in():
    swapped = PUBLISHED_V2.replace("('sep_conv_3x3', 1), ('skip_connect', 0)", "('skip_connect', 0), ('sep_conv_3x3', 1)")
    assert swapped != PUBLISHED_V2 and decode(swapped) == DARTS_V2


def test_decode_accepts_the_range_darts_search_prints():
    printed = PUBLISHED_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 6)")
    assert decode(printed) == DARTS_V2


@pytest.mark.parametrize("bad", [
    "", "Genotype()", "print('x')", "Genotype(normal=[], normal_concat=[2], reduce=[], reduce_concat=[2])",
    PUBLISHED_V2.replace("'sep_conv_3x3', 0", "'conv_7x1_1x7', 0", 1),  # an op DARTS's space does not have
    PUBLISHED_V2.replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"),  # node 5 cannot read itself
    PUBLISHED_V2.replace("('skip_connect', 0), ('dil_conv_3x3', 2)", "('skip_connect', 2), ('dil_conv_3x3', 2)"),
    PUBLISHED_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[2, 7]"),
    PUBLISHED_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=__import__('os')"),
    PUBLISHED_V2 + ")",
    PUBLISHED_V2.replace("'sep_conv_3x3', 0", "'none', 0", 1),  # a supernet candidate, never a derived edge
    PUBLISHED_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 10**12)"),
    PUBLISHED_V2.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range('a')"),
])
def test_decode_rejects_bad_text_with_a_value_error(bad):
    with pytest.raises(ValueError):
        decode(bad)


@pytest.mark.parametrize("bad", [
    corrupted(DARTS_V2, normal=(*DARTS_V2.normal[:7], ("conv_7x1_1x7", 2))),
    corrupted(DARTS_V2, normal=DARTS_V2.normal[:6]),
    corrupted(DARTS_V2, reduce=list(DARTS_V2.reduce)),  # unhashable: not a value
    corrupted(DARTS_V2, normal=(DARTS_V2.normal[1], DARTS_V2.normal[0], *DARTS_V2.normal[2:])),  # not canonical
    encode(DARTS_V2),
])
def test_is_valid_rejects_what_the_constructor_would(bad):
    assert not space.is_valid(bad)


def _edits(a: Genotype, b: Genotype) -> int:
    return sum(x != y for cell in ("normal", "reduce") for x, y in zip(getattr(a, cell), getattr(b, cell)))


def test_sample_and_mutate_stay_in_the_space_and_mutate_changes_one_edge():
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert space.is_valid(arch) and space.is_valid(child) and child != arch
        assert all(op != "none" for op, _ in (*child.normal, *child.reduce))
        # one edge changed; re-sorting a node can move its other edge too
        assert 1 <= _edits(arch, child) <= 2


def test_neighbors_are_distinct_one_edit_away_and_include_input_changes():
    arch = space.sample(np.random.default_rng(1))
    neighbors = space.neighbors(arch)
    # per cell: 8 edges x 6 other ops, and 0 + 1 + 2 + 3 other inputs for each of a node's two edges
    assert len(neighbors) == len(set(neighbors)) == 2 * (8 * 6 + 2 * (0 + 1 + 2 + 3))
    assert arch not in neighbors and all(1 <= _edits(arch, n) <= 2 for n in neighbors)


def test_sample_is_seeded_and_covers_the_input_choices():
    assert space.sample(np.random.default_rng(7)) == space.sample(np.random.default_rng(7))
    archs = [space.sample(np.random.default_rng(s)) for s in range(200)]
    assert len(set(archs)) == 200
    assert {source for a in archs for _, source in a.normal[6:]} == {0, 1, 2, 3, 4}


def test_optuna_params_round_trip_and_suggest_builds_the_arch():
    arch = DARTS_V2
    assert space.from_params(space.to_params(arch)) == arch
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    built = space.suggest(trial)
    assert space.from_params(trial.params) == built and set(trial.params) == set(space.distributions())


def test_features_ignore_edge_order_and_paths_are_fixed_length():
    arch = space.sample(np.random.default_rng(3))
    features = space.features(arch)
    assert features.shape == (2 * 14 * 8,) and features.sum() == 16
    assert space.path_features(arch).shape == (512,) and space.path_features(arch).sum() > 0
    assert not np.array_equal(space.path_features(arch), space.path_features(space.mutate(arch, np.random.default_rng(0))))


def test_neat_genes_start_flat_and_grow_deeper():
    rng = np.random.default_rng(0)
    genes = space.minimal_genes(rng)
    flat = space.from_genes(genes)
    assert {source for _, source in (*flat.normal, *flat.reduce)} == {0, 1}
    grown = space.grow(genes, rng)
    assert len(grown) == len(genes) + 1 and max(s for _, s in (*space.from_genes(grown).normal,
                                                                   *space.from_genes(grown).reduce)) >= 2


def _params_m(model: torch.nn.Module) -> float:
    """As DARTS's utils.count_parameters_in_MB: the auxiliary head is not counted."""
    return sum(p.numel() for name, p in model.named_parameters() if "auxiliary" not in name) / 1e6


def test_published_darts_network_has_the_papers_parameter_count():
    """DARTS (2nd order) at C=36 with 20 cells has 3.3 M parameters (Liu et al. 2019, Table 1)."""
    model = space.build(DARTS_V2, NetworkConfig(channels=36, cells_per_stage=6, in_channels=3, num_classes=10))
    assert len(model.cells) == 20 and model.reductions == (6, 13)
    assert round(_params_m(model), 1) == 3.3


def test_the_product_counts_the_deployed_network_without_the_auxiliary_head():
    """The parameter count retrain, evaluate and the params objective report is DARTS's: the auxiliary head, which
    only the training loss reads, is not in it (it was: 3.83 M for DARTS_V2 retrained with the head)."""
    from nas.estimation.cost import count_params

    config = NetworkConfig(channels=36, cells_per_stage=6, in_channels=3, num_classes=10)
    with_head = space.build(DARTS_V2, NetworkConfig(**{**config.__dict__, "auxiliary": True}))
    assert sum(p.numel() for p in with_head.parameters()) > 3.8e6
    assert count_params(with_head) == count_params(space.build(DARTS_V2, config)) == round(_params_m(with_head) * 1e6)


@pytest.mark.parametrize("config,shape", [(NetworkConfig(8, 1, 1, 10), (2, 1, 8, 8)),
                                          (NetworkConfig(4, 1, 1, 7), (2, 1, 28, 28)),
                                          (NetworkConfig(4, 1, 3, 100), (2, 3, 32, 32))])
def test_build_runs_on_any_input_with_auxiliary_head_and_drop_path(config, shape):
    from nas.spaces.darts.network import DartsNetwork

    model = DartsNetwork(space.sample(np.random.default_rng(0)), config, auxiliary=True)
    model.drop_path_prob = 0.2
    model.train()
    out = model(torch.randn(shape))
    assert out.shape == model.aux_logits.shape == (shape[0], config.num_classes)
    model.eval()
    assert model(torch.randn(shape)).shape == (shape[0], config.num_classes) and model.aux_logits is None
