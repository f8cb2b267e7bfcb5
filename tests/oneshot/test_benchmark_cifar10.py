"""The online users' check of benchmarks/oneshot.py: with CIFAR-10 on disk (here a tiny file in the real format that
the test writes) the one-shot search's NB201 cell is looked up in the shipped NAS-Bench-201 table."""

from __future__ import annotations

import importlib.util
import sys

import torchvision.datasets as tvd

from nas.tabular.benchmark import NB201_CIFAR10
from tests.conftest import ROOT
from tests.data.test_prepare import _write_cifar10


def test_oneshot_benchmark_looks_the_found_cell_up_in_the_table(tmp_path, monkeypatch, capsys):
    md5 = _write_cifar10(tmp_path / "raw")
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setitem(tvd.CIFAR10.meta, "md5", md5["batches.meta"])
    spec = importlib.util.spec_from_file_location("oneshot_benchmark", ROOT / "benchmarks" / "oneshot.py")
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    monkeypatch.setattr(sys, "argv", [
        "oneshot.py", "--dataset", "cifar10", "--root", str(tmp_path / "raw"), "--methods", "gdas",
        "--tau-methods", "gdas", "--supernet-epochs", "1", "--re-trials", "2", "--tau-archs", "4",
        "--search-epochs", "1", "--retrain-epochs", "1", "--table", str(NB201_CIFAR10)])
    monkeypatch.chdir(tmp_path)
    benchmark.main()
    out = capsys.readouterr().out.splitlines()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in out
            if line.startswith(("| re ", "| gdas "))}
    assert set(rows) == {"re", "gdas"}
    for row in rows.values():  # the table's test_acc_200 of the NB201 cell found, a percentage
        assert 0 < float(row[5]) < 100
    assert out[-1].startswith("RESULT tau_spos=") and "tau_gdas=" in out[-1]
