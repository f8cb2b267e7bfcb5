"""Hardware costs measured on built networks: parameters, FLOPs (checked against sums done by hand and the NB201
table), latency, and the objective registry that config validation reads without torch."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch
from torch import nn

from nas.errors import UserError
from nas.estimation.cost import count_params, flops, latency_ms, measure
from nas.estimation.objectives import CHEAP_OBJECTIVES, OBJECTIVES
from nas.spaces import SPACES, NetworkConfig
from nas.spaces.nb201 import NB201Arch
from tests.conftest import SHARED_TABLE

ALL_3X3 = NB201Arch(("nor_conv_3x3",) * 6)
ALL_NONE = NB201Arch(("none",) * 6)


def test_params_of_known_layers():
    assert count_params(nn.Linear(10, 5)) == 10 * 5 + 5
    assert count_params(nn.Conv2d(3, 8, 3)) == 8 * 3 * 3 * 3 + 8
    frozen = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 2))
    frozen[0].requires_grad_(False)
    assert count_params(frozen) == 5 * 2 + 2  # frozen weights are not searched over
    shared = nn.Linear(4, 4)
    assert count_params(nn.Sequential(shared, shared)) == 20  # a shared layer is one set of weights


@pytest.mark.parametrize("stride", [1, 2])
def test_flops_of_a_conv_are_twice_its_macs(stride):
    conv = nn.Conv2d(3, 8, 3, stride=stride, padding=1)
    out = 8 // stride
    assert flops(conv, (3, 8, 8)) == 2 * (out * out * 8) * (3 * 3 * 3)  # bias not counted


def test_flops_of_a_linear_layer_and_batch_size_one():
    assert flops(nn.Linear(10, 5), (10,)) == 2 * 10 * 5
    # Pooling and activations cost nothing; the count is per example.
    assert flops(nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 3)), (10,)) == 2 * (10 * 5 + 5 * 3)


def test_nb201_cell_flops_match_a_hand_count():
    """The cells' convolutions, counted by hand at each stage's size, are the whole difference between the all-3x3
    network and the all-none one (same stem, reductions and head)."""
    config = NetworkConfig(channels=8, cells_per_stage=2, in_channels=1, num_classes=10)
    space = SPACES["nb201"]
    side, c, n = 8, config.channels, config.cells_per_stage
    by_hand = sum(6 * n * 2 * (side >> s) ** 2 * (c << s) ** 2 * 9 for s in range(3))
    measured = flops(space.build(ALL_3X3, config), (1, side, side)) - flops(space.build(ALL_NONE, config), (1, 8, 8))
    assert measured == by_hand


@pytest.mark.skipif(not SHARED_TABLE.exists(), reason="the NB201 table is not in ../shared")
def test_nb201_params_match_the_benchmark():
    space = SPACES["nb201"]
    with SHARED_TABLE.open() as f:
        rows = [row for _, row in zip(range(3), csv.DictReader(f))]
    for row in rows:
        model = space.build(space.decode(row["arch"]), NetworkConfig(channels=16, cells_per_stage=5))
        assert count_params(model) / 1e6 == pytest.approx(float(row["params_m"]), abs=5e-5), row["arch"]


def test_latency_is_positive_and_grows_with_the_work():
    small = nn.Linear(16, 16)
    big = nn.Sequential(*(nn.Linear(1024, 1024) for _ in range(4)))  # ~10^4 times the multiply-adds
    fast = latency_ms(small, (16,), "cpu", batch_size=8, min_run_time=0.05)
    slow = latency_ms(big, (1024,), "cpu", batch_size=8, min_run_time=0.05)
    assert 0 < fast < slow


def test_latency_leaves_the_model_and_threads_as_they_were():
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    latency_ms(model, (8,), "cpu", batch_size=4, min_run_time=0.01, threads=1)
    assert model.training and torch.get_num_threads() == threads
    # Eval mode while timing: BatchNorm's running statistics did not move.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_flops_restore_training_mode():
    model = nn.Sequential(nn.Linear(8, 8), nn.Dropout(0.5))
    flops(model, (8,))
    assert model.training
    model.eval()
    flops(model, (8,))
    assert not model.training


def test_latency_refuses_cuda_when_absent():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(UserError, match="cuda"):
        latency_ms(nn.Linear(2, 2), (2,), "cuda")


def test_measure_returns_the_cheap_objectives_asked_in_their_units():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    names = ["val_accuracy", "params_m", "mflops", "latency_ms", "params", "flops"]
    values = measure(model, names, (1, 8, 8), "cpu", batch_size=2, min_run_time=0.01)
    assert list(values) == ["params_m", "mflops", "latency_ms", "params", "flops"]  # val_accuracy needs training
    assert values["params"] == count_params(model) and values["params_m"] == values["params"] / 1e6
    assert values["flops"] == flops(model, (1, 8, 8)) and values["mflops"] == values["flops"] / 1e6
    assert values["latency_ms"] > 0
    assert measure(model, ["params"], (1, 8, 8)) == {"params": values["params"]}  # nothing else measured


def test_measure_names_the_allowed_objectives_for_an_unknown_one():
    with pytest.raises(UserError, match="'energy'.*allowed: val_accuracy, params"):
        measure(nn.Linear(2, 2), ["params", "energy"], (2,))


def test_objective_registry():
    assert set(OBJECTIVES) == {"val_accuracy", "params", "params_m", "flops", "mflops", "latency_ms"}
    assert {name: o.direction for name, o in OBJECTIVES.items()} == {
        "val_accuracy": "maximize", "params": "minimize", "params_m": "minimize", "flops": "minimize",
        "mflops": "minimize", "latency_ms": "minimize"}
    assert [name for name, o in OBJECTIVES.items() if o.needs_training] == ["val_accuracy"]
    assert set(CHEAP_OBJECTIVES) == set(OBJECTIVES) - {"val_accuracy"}
    assert all(o.unit and o.description for o in OBJECTIVES.values())


def test_the_registry_imports_without_torch():
    """nas.config validates objective names from this module; it must not pay for (or need) torch."""
    code = ("import sys, nas.estimation.objectives\n"
            "torch = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
            "sys.exit(' '.join(torch[:5]) if torch else 0)")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"torch modules imported: {result.stderr.strip()[:300]}"


def test_device_name_names_the_processor_latency_is_measured_on():
    from pathlib import Path

    from nas.estimation.cost import device_name

    name = device_name("cpu")
    assert name.startswith("cpu: ") and len(name) > len("cpu: ")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                  if line.startswith("model name")]
        assert not models or name == f"cpu: {models[0]}"
