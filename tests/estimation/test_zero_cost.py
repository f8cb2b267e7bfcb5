import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas import cli
from nas.config import ZERO_COST_PROXIES
from nas.errors import UserError
from nas.estimation.zero_cost import (
    BATCH_SIZES,
    PROXIES,
    ZeroCostEstimator,
    best_of,
    image_batch,
    sample_distinct,
    score,
    scores,
    warm_start,
)
from nas.spaces import SPACES, NetworkConfig
from nas.tabular import NB201_CIFAR10
from nas.training import init_model

torch.set_num_threads(1)
NB201 = SPACES["nb201"]
SMALL = NetworkConfig(channels=4, cells_per_stage=1)
ALL_CONV = NB201.decode(
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
NO_PATH = NB201.decode("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def _model(arch, space=NB201, network=SMALL, seed=0):
    return init_model(lambda: space.build(arch, network), seed)


def test_names_are_the_configs():
    assert tuple(PROXIES) == ZERO_COST_PROXIES == tuple(BATCH_SIZES)
    assert cli._SPACE_NAMES == tuple(SPACES) and cli._PROXY_NAMES == tuple(PROXIES)


@pytest.mark.parametrize("space, arch", [
    ("nb201", ALL_CONV),
    ("macro", SPACES["macro"].decode("conv:k3:w2:s1 | max_pool:k3:s2 | sep_conv:k5:w4:s1:sum(0,1)")),
    ("darts", SPACES["darts"].sample(np.random.default_rng(0))),
])
def test_every_proxy_is_finite_and_the_same_for_the_same_seed(space, arch):
    x, y = _batch()
    proxies = list(PROXIES) if space != "darts" else ["synflow", "naswot", "snip", "params"]
    first = [ZeroCostEstimator(SPACES[space], SMALL, x, y, p, seed=3).estimate(arch) for p in proxies]
    assert np.all(np.isfinite(first))
    some = ["synflow", "naswot", "snip", "params"]
    again = [ZeroCostEstimator(SPACES[space], SMALL, x, y, p, seed=3).estimate(arch) for p in some]
    other = [ZeroCostEstimator(SPACES[space], SMALL, x, y, p, seed=4).estimate(arch) for p in some]
    assert again == [first[proxies.index(p)] for p in some]
    assert [a != b for a, b in zip(again, other)] == [True, True, True, False]  # new weights; the same count


def test_score_leaves_the_model_unchanged_and_scores_equals_score():
    model = _model(ALL_CONV)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = _batch(10)  # smaller than every paper batch: each proxy sees all of it
    together = scores(model, list(PROXIES), x, y)  # grad_norm, snip, fisher share one backward pass
    assert together == {proxy: pytest.approx(score(model, proxy, x, y), rel=1e-9) for proxy in PROXIES}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.training and all(p.grad is None for p in model.parameters())


def test_synflow_reads_no_data_but_the_shape():
    model = _model(ALL_CONV)
    x, y = _batch()
    value = score(model, "synflow", x, y)
    assert value == score(model, "synflow", torch.zeros(1, 3, 32, 32), None) == score(model, "synflow", x * 7 + 1, y)
    assert value != score(model, "synflow", torch.zeros(1, 3, 16, 16), None)


def test_synflow_is_the_path_sum_of_absolute_weights_without_batchnorm():
    # A chain conv -> BN -> linear: R = sum over paths of |w1| |w2|, and sum |w dR/dw| counts each path once per layer.
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[[[-2.0]]], [[[3.0]]]]))
        model[1].weight.fill_(100.0)  # removed, as in the reference: no effect
        model[3].weight.copy_(torch.tensor([[5.0, -7.0]]))
    assert score(model, "synflow", torch.zeros(4, 1, 1, 1), None) == pytest.approx(2 * (2 * 5 + 3 * 7))


def test_params_is_the_benchmarks_count():
    table = pd.read_csv(NB201_CIFAR10, nrows=3)
    for text, params_m in zip(table["arch"], table["params_m"]):
        model = _model(NB201.decode(text), network=NetworkConfig(16, 5))
        assert score(model, "params", *_batch(1)) == sum(p.numel() for p in model.parameters())
        assert score(model, "params", *_batch(1)) / 1e6 == pytest.approx(params_m, abs=1e-4)


def test_flops_of_one_image_as_flop_counter_counts_them():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 32, 10))
    assert score(model, "flops", *_batch(5)) == 2 * (4 * 3 * 9 * 32 * 32 + 4 * 32 * 32 * 10)
    nb201 = _model(ALL_CONV)
    with FlopCounterMode(display=False) as counter:
        nb201(torch.zeros(1, 3, 32, 32))
    assert score(nb201, "flops", *_batch(3)) == counter.get_total_flops() > 0


def _codes_model():
    return nn.Sequential(nn.Flatten(), nn.ReLU())  # the ReLU's input is the image: its codes are the pixels' signs


def test_naswot_is_log_det_of_the_hamming_kernel():
    codes = torch.tensor([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 1, 0], [1, 1, 0, 0, 0, 1]], dtype=torch.float32)
    x = (2 * codes - 1).reshape(3, 1, 2, 3)  # active where 1
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1).double()
    assert score(_codes_model(), "naswot", x, None) == pytest.approx(float(torch.logdet(6 - hamming)))


def test_naswot_is_higher_when_the_codes_are_more_distinct():
    rng = np.random.default_rng(0)
    distinct = torch.from_numpy(rng.choice([-1.0, 1.0], size=(8, 1, 8, 8))).float()
    similar = distinct[:1].repeat(8, 1, 1, 1)
    similar[:, :, 0, :] = distinct[:, :, 0, :]  # the images agree everywhere but on their first row
    assert score(_codes_model(), "naswot", distinct, None) > score(_codes_model(), "naswot", similar, None)
    x, _ = _batch(16)
    model = _model(ALL_CONV)
    assert score(model, "naswot", x, None) > score(model, "naswot", x[:1].repeat(16, 1, 1, 1) + 0.01 * x, None)


def test_jacob_cov_is_nan_when_the_output_does_not_depend_on_the_input():
    x, y = _batch()
    assert np.isnan(score(_model(NO_PATH), "jacob_cov", x, y))
    assert np.isfinite(score(_model(ALL_CONV), "jacob_cov", x, y))


def test_best_of_ranks_high_first_ties_in_order_nan_last():
    assert best_of(list("abcde"), [1.0, np.nan, 3.0, 1.0, -np.inf], 5) == list("cadeb")
    assert best_of(list("abcde"), [1.0, np.nan, 3.0, 1.0, -np.inf], 2) == list("ca")


def test_sample_distinct_draws_in_order_and_fails_on_a_small_space():
    archs = sample_distinct(NB201, 50, np.random.default_rng(1))
    rng, draws = np.random.default_rng(1), []
    while len(set(draws)) < 50:
        draws.append(NB201.sample(rng))
    assert archs == list(dict.fromkeys(draws))

    class Tiny:
        def sample(self, rng):
            return int(rng.integers(3))

    with pytest.raises(ValueError, match="pool 4"):
        sample_distinct(Tiny(), 4, np.random.default_rng(0), max_repeats=50)


def test_warm_start_is_the_top_k_of_the_pool_by_the_proxy():
    x, y = _batch()
    got = warm_start(NB201, SMALL, x, y, "params", pool=24, top_k=6, seed=5)
    pool = sample_distinct(NB201, 24, np.random.default_rng(5))
    counts = [score(_model(a, seed=5), "params", x, y) for a in pool]
    order = sorted(range(24), key=lambda i: -counts[i])  # sorted is stable: ties in draw order
    assert got == [pool[i] for i in order[:6]]
    assert len(set(counts)) < len(counts)  # the pool has ties, so their order was tested
    assert warm_start(NB201, SMALL, x, y, "params", pool=24, top_k=6, seed=5) == got


def test_image_batch_is_cifar_shaped_real_and_seeded():
    x, y = image_batch("mnist5k", 16, seed=2)
    assert x.shape == (16, 3, 32, 32) and y.shape == (16,) and y.dtype == torch.int64
    assert torch.equal(x[:, 0], x[:, 2]) and x.std() > 0.5
    assert torch.equal(image_batch("mnist5k", 16, seed=2)[0], x)
    assert not torch.equal(image_batch("mnist5k", 16, seed=3)[0], x)


def _run(capsys, *argv):
    try:
        code = cli.main(["zero-cost", *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, capsys.readouterr()


def test_cli_writes_one_row_per_table_architecture(tmp_path, capsys):
    out = tmp_path / "scores.csv"
    code, _ = _run(capsys, "--proxies", "synflow,naswot,params", "--channels", "4", "--cells", "1", "--limit", "3",
                   "--out", str(out))
    assert code == 0
    written = pd.read_csv(out)
    table = pd.read_csv(NB201_CIFAR10, nrows=3)
    assert list(written.columns) == ["index", "arch", "synflow", "naswot", "params"]
    assert written["index"].tolist() == table["index"].tolist() and written["arch"].tolist() == table["arch"].tolist()
    assert np.isfinite(written[["synflow", "naswot", "params"]].to_numpy()).all()
    x, _ = image_batch("mnist5k", BATCH_SIZES["naswot"], seed=0)
    model = _model(NB201.decode(table["arch"][1]))
    assert written["naswot"][1] == pytest.approx(score(model, "naswot", x, None), rel=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]  # no temporary file left


@pytest.mark.parametrize("argv, message", [
    (["--proxies", "synflow,zen"], "--proxies 'synflow,zen': unknown zen; allowed: grad_norm, snip,"),
    (["--limit", "15626"], "--limit 15626: "),
    (["--limit", "0"], "--limit 0: "),
    (["--table", "{tmp}/missing.csv"], "--table {tmp}/missing.csv: no such table"),
    (["--table", "{tmp}/no_arch.csv"], "--table {tmp}/no_arch.csv: missing column(s) arch"),
    (["--table", "{tmp}/bad_arch.csv"], "--table {tmp}/bad_arch.csv: row 3: not a nb201 architecture: "),
    (["--space", "macro"], "nb201_cifar10.csv: row 2: not a macro architecture: "),  # the NB201 table, by default
    (["--space", "cifar"], "argument --space: invalid choice"),
    (["--out", "{tmp}/no/such/dir/x.csv"], "--out {tmp}/no/such/dir/x.csv: folder"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, argv, message):
    (tmp_path / "no_arch.csv").write_text("index,name\n0,a\n")
    (tmp_path / "bad_arch.csv").write_text(f"index,arch\n0,{ALL_CONV}\n1,|conv~0|\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    # Later options win: argv overrides these.
    argv = ["--proxies", "synflow", "--out", str(tmp_path / "s.csv"),
            *(a.replace("{tmp}", str(tmp_path)) for a in argv)]
    code, captured = _run(capsys, *argv)
    assert code == 2
    line = captured.err.strip()
    assert "\n" not in line and message.replace("{tmp}", str(tmp_path)) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_user_error_for_a_dataset_batch_larger_than_the_dataset():
    with pytest.raises(UserError, match="digits: 1797 images"):
        image_batch("digits", 5000)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_every_proxy_scores_a_model_on_the_gpu_from_a_cpu_batch_as_on_the_cpu():
    model, (x, y) = _model(ALL_CONV), _batch()
    on_cpu = scores(model, list(PROXIES), x, y)
    on_gpu = scores(model.cuda(), list(PROXIES), x, y)
    assert on_gpu == {proxy: pytest.approx(value, rel=1e-3, abs=1e-6) for proxy, value in on_cpu.items()}
