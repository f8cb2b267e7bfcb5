import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from nas.cli import main
from nas.errors import UserError
from nas.tabular import NB201_CIFAR10
from nas.tabular.bench import compare, resolve_strategies, run_bench


def test_aliases_and_unknown_names():
    assert resolve_strategies("re, local,random") == ["regularized_evolution", "local_search", "random"]
    with pytest.raises(UserError, match="--strategies: unknown strategy 'banana'; allowed: random, .*re \\(= regularized_evolution\\)"):
        resolve_strategies("random,banana")
    assert resolve_strategies("bananas,optuna.RandomSampler") == ["bananas", "optuna.RandomSampler"]


def test_compare_writes_tables_plot_and_one_parent_with_a_child_per_strategy(tmp_path, mlflow_uri):
    out = compare(NB201_CIFAR10, ["random", "regularized_evolution"], 4, 3000, tmp_path / "b", seed=1,
                  tracking_uri=mlflow_uri, report=lambda line: None)
    results = pd.read_csv(tmp_path / "b" / "results.csv")
    assert list(results.columns) == ["strategy", "run", "arch", "val_acc_12", "test_acc_200", "queries", "sim_time_s"]
    assert len(results) == 8 and (results["sim_time_s"] <= 3000).all()
    summary = pd.read_csv(tmp_path / "b" / "summary.csv")
    assert summary["mean_test_acc_200"].tolist() == pytest.approx(
        results.groupby("strategy", sort=False)["test_acc_200"].mean().tolist())
    assert (tmp_path / "b" / "anytime.png").read_bytes()[:4] == b"\x89PNG"
    client = MlflowClient(mlflow_uri)
    children = client.search_runs([client.get_experiment_by_name("nas-bench").experiment_id],
                                  f"tags.mlflow.parentRunId = '{out['mlflow_run_id']}'")
    assert sorted(c.info.run_name for c in children) == ["random", "regularized_evolution"]


def test_runs_share_seeds_across_strategies_and_processes():
    one, _ = run_bench(NB201_CIFAR10, ["random", "local_search"], 3, 2000, seed=5, report=lambda line: None)
    two, _ = run_bench(NB201_CIFAR10, ["random", "local_search"], 3, 2000, seed=5, jobs=2, report=lambda line: None)
    pd.testing.assert_frame_equal(one, two)


def test_cli_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys):
    assert main(["bench", "--strategies", "nope", "--out", str(tmp_path / "o")]) == 2
    assert main(["bench", "--runs", "0", "--out", str(tmp_path / "o")]) == 2
    assert main(["bench", "--table", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("nas: error: ") for line in errors)
    assert not (tmp_path / "o").exists()


def test_cli_without_tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--strategies", "local", "--runs", "2", "--budget-s", "1000", "--out", "o", "--no-tracking"]) == 0
    assert (tmp_path / "o" / "summary.csv").is_file() and not (tmp_path / "mlflow.db").exists()
