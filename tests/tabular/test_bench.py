import os
import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from nas.cli import main
from nas.errors import UserError
from nas.tabular import NB201_CIFAR10
from nas.tabular.bench import check_arguments, compare, resolve_strategies, run_bench


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


@pytest.mark.parametrize("argv,message", [
    (["--strategies", "nope"], "--strategies: unknown strategy 'nope'"),
    (["--strategies", "optuna.GridSampler"], "--strategies: optuna.GridSampler cannot run here"),
    (["--runs", "0"], "--runs 0: must be a whole number >= 1"),
    (["--jobs", "0"], "--jobs 0: must be a whole number >= 1"),
    (["--seed", "-1"], "--seed -1: must be a whole number >= 0"),
    (["--budget-s", "-1"], "--budget-s -1: must be a finite number of simulated seconds > 0"),
    (["--budget-s", "nan"], "--budget-s nan: must be a finite number"),
    (["--budget-s", "100"], "--budget-s 100: less than the 207.65 s of the dearest architecture in"),
    (["--table", "missing.csv"], "missing.csv: no such benchmark table"),
    (["--table", "header.csv"], "header.csv: holds 0 of the 15,625 architectures"),
    (["--out", "file"], "--out file: file is a file, not a folder"),
    (["--out", "file/sub/o"], "--out file/sub/o: file is a file, not a folder"),
    (["--experiment", ""], "--experiment: empty; name the MLflow experiment"),
    (["--tracking-uri", "sqlite:///file/m.db"], "MLflow store sqlite:///file/m.db: file is a file, not a folder"),
    (["--tracking-uri", "sqlite:///header.csv"], "MLflow store sqlite:///header.csv: header.csv is not a SQLite"),
])
def test_cli_bad_arguments_exit_2_and_write_nothing(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "header.csv").write_text(NB201_CIFAR10.read_text().splitlines()[0] + "\n")
    (tmp_path / "file").write_text("x")
    before = sorted(tmp_path.rglob("*"))
    assert main(["bench", "--runs", "1", "--out", "o", *argv]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"nas: error: {message}"), err
    assert sorted(tmp_path.rglob("*")) == before and (tmp_path / "file").read_text() == "x"


def test_an_unwritable_out_folder_is_refused(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.geteuid() == 0:  # root may write anywhere: the check is asked what the folder's mode tells anyone else
        access = os.access
        monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
            False if Path(path) == locked and mode & os.W_OK else access(path, mode, **kw)))
    with pytest.raises(UserError, match="--out .*locked/o: .*locked is not writable"):
        check_arguments(1, 1000, tmp_path / "locked" / "o")


def test_a_partial_table_fails_before_any_run(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("".join(NB201_CIFAR10.read_text().splitlines(keepends=True)[:101]))
    reports = []
    with pytest.raises(UserError, match="t.csv: holds 100 of the 15,625 architectures"):
        compare(table, ["random"], 2, 1000, tmp_path / "o", report=reports.append)
    assert reports == [] and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv,message", [
    (["random", "abc"], "runs 'abc': must be a whole number >= 1"),
    (["random", "0"], "--runs 0: must be a whole number >= 1"),
    (["nope"], "--strategies: unknown strategy 'nope'"),
    (["random", "1", "extra"], "unexpected argument 'extra'; usage: python -m flows.bench [strategies] [runs]"),
])
def test_the_flow_checks_its_arguments_before_it_starts(tmp_path, monkeypatch, argv, message):
    from flows.bench import main as flow_main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=re.escape(message)):
        flow_main(argv)
    assert list(tmp_path.iterdir()) == []


def test_cli_without_tracking(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--strategies", "local", "--runs", "2", "--budget-s", "1000", "--out", "o", "--no-tracking"]) == 0
    assert (tmp_path / "o" / "summary.csv").is_file() and not (tmp_path / "mlflow.db").exists()


def test_cli_multi_fidelity_end_to_end(tmp_path, mlflow_uri):
    assert main(["bench", "--strategies", "bohb,random", "--runs", "2", "--budget-s", "6000", "--fidelity", "multi",
                 "--out", "o", "--tracking-uri", mlflow_uri]) == 0
    results = pd.read_csv(tmp_path / "o" / "results.csv")
    assert list(results.columns)[-1] == "queries_200" and len(results) == 4
    bohb, random = results[results.strategy == "bohb"], results[results.strategy == "random"]
    assert (bohb["queries_200"] >= 1).all() and (random["queries_200"] == 0).all()
    assert (results["sim_time_s"] <= 6000).all()
    client = MlflowClient(mlflow_uri)
    parent = client.search_runs([client.get_experiment_by_name("nas-bench").experiment_id], "tags.nas_role = 'bench'")
    assert [r.data.params["fidelity"] for r in parent] == ["multi"]


def test_an_unknown_fidelity_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:  # argparse's own error, as one line
        main(["bench", "--fidelity", "double", "--out", "o", "--no-tracking"])
    err = capsys.readouterr().err.splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "--fidelity: invalid choice: 'double'" in err[0]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UserError, match="--fidelity 'double': allowed single, multi"):
        check_arguments(1, 1000, tmp_path / "o", fidelity="double")
