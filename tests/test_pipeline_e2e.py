"""The real pipeline end to end: `dvc repro` in a fresh git repo, Prefect flows, SQLite MLflow and Optuna stores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from nas.data import load_prepared, normalize
from nas.training import predict
from nas.training.retrain import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["nas", "flows", ".dvc/config", ".dvcignore", "dvc.yaml", "params.yaml", "prefect.toml", ".gitignore",
                 "data/.gitignore", "data/raw/README.md"]
N_TRIALS = 4


def sh(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory, prefect_api_url, _migrated_mlflow_db) -> tuple[Path, dict, str, str]:
    repo = tmp_path_factory.mktemp("e2e")
    for name in PROJECT_FILES:
        src, dst = ROOT / name, repo / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["search"].update(n_trials=N_TRIALS, epochs=1, channels=4, batch_size=256,
                            strategy_options={"population_size": 2, "sample_size": 2})
    params["retrain"].update(epochs=2, warmup_epochs=1, channels=4, cells_per_stage=1)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(_migrated_mlflow_db, repo / "mlflow.db")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PREFECT_API_URL": prefect_api_url}
    env.pop("MLFLOW_TRACKING_URI", None)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    sh(["git", "init", "-q"], repo, env)
    sh([*git, "add", "-A"], repo, env)
    sh([*git, "commit", "-qm", "project"], repo, env)
    first = sh(["dvc", "repro"], repo, env).stdout
    second = sh(["dvc", "repro"], repo, env).stdout
    return repo, env, first, second


def test_dvc_repro_runs_every_stage_then_nothing(repo):
    _, _, first, second = repo
    for stage in ("prepare", "search", "retrain", "evaluate"):
        assert f"Running stage '{stage}'" in first
    assert "Running stage" not in second


def test_reports_and_models(repo):
    path = repo[0]
    metrics = json.loads((path / "reports/metrics.json").read_text())
    # dvc metrics show: a short headline set; the long tail in details.json
    assert set(metrics) == {"test_accuracy", "test_accuracy_ci95_low", "test_accuracy_ci95_high", "n_params", "flops",
                            "cpu_latency_ms_batch1"}
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["flops"] > 0
    details = json.loads((path / "reports/details.json").read_text())
    assert len(details["per_class_accuracy"]) == 10
    # the size of what is deployed: the exported file (best.pt also holds training-only weights)
    assert details["model_size_mb"] == round((path / "models/export/model.onnx").stat().st_size / 2**20, 3)
    for name in ("trials.csv", "search_progress.csv", "search_progress.png", "trials.png", "best_arch.png"):
        assert (path / "reports" / name).stat().st_size > 0
    assert len((path / "reports/trials.csv").read_text().splitlines()) == N_TRIALS + 1
    ckpt = torch.load(path / "models/best.pt", weights_only=True)
    assert ckpt["arch"] == details["arch"]
    # the figures are the retrained model's on the test split, every one of its images
    model, ckpt = load_checkpoint(path / "models/best.pt")
    test = load_prepared(path / "data/prepared").test
    correct = predict(model, normalize(test.x, ckpt["manifest"])) == test.y
    assert details["test_samples"] == len(test.y) and metrics["test_accuracy"] == round(correct.float().mean().item(), 4)
    assert list(details["per_class_accuracy"].values()) == [
        round(correct[test.y == k].float().mean().item(), 4) for k in range(10)]


def test_one_mlflow_parent_with_a_child_per_trial_and_a_registered_model(repo):
    path, _, _, _ = repo
    client = MlflowClient(f"sqlite:///{path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nas")
    parents = client.search_runs([exp.experiment_id], "tags.nas_role = 'search'")
    assert len(parents) == 1
    parent = parents[0]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True).stdout.strip()
    assert parent.data.tags["mlflow.source.git.commit"] == head
    assert all(c.data.tags["mlflow.source.git.commit"] == head for c in client.search_runs([exp.experiment_id]))
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on "Model training"
    lock = yaml.safe_load((path / "dvc.lock").read_text())
    assert parent.data.tags["data_dvc_md5"] == lock["stages"]["prepare"]["outs"][0]["md5"]
    assert {"space", "strategy", "dataset", "seed"} <= set(parent.data.params)
    assert {"n_trials", "workers", "executor"} <= set(parent.data.tags)  # may change between starts: tags
    children = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
                                  "and tags.nas_role = 'trial'")
    assert len(children) == N_TRIALS
    assert all(c.data.params["arch"] and "val_accuracy" in c.data.metrics for c in children)
    versions = client.search_model_versions("name = 'nas-digits'")
    assert len(versions) == 1


def test_optuna_study_holds_the_trials(repo):
    path = repo[0]
    search = json.loads((path / "models/search.json").read_text())
    storage = f"sqlite:///{path / 'optuna.db'}"
    study = optuna.load_study(study_name=search["study_name"], storage=storage)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == N_TRIALS
    assert study.best_trial.number == search["best"]["number"]


def test_dvc_metrics_and_plots_show(repo):
    path, env, _, _ = repo
    (workspace,) = json.loads(sh(["dvc", "metrics", "show", "--json"], path, env).stdout).values()
    written = json.loads((path / "reports/metrics.json").read_text())
    assert workspace["data"]["reports/metrics.json"]["data"]["test_accuracy"] == written["test_accuracy"]
    sh(["dvc", "plots", "show", "-o", str(path / "plots_out")], path, env)
    html = (path / "plots_out" / "index.html").read_text()
    # Offline: PNG plots as images, no vega script from a CDN.
    assert "reports/search_progress.png" in html and "reports/trials.png" in html
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_raw_files_put_in_data_root_make_the_prepare_stage_stale(repo):
    """An offline user puts (or repairs) torchvision's files under data.root: dvc sees the prepare stage changed."""
    path, env, _, _ = repo
    added = path / "data" / "raw" / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    added.parent.mkdir(parents=True)
    try:
        added.write_bytes(b"\0" * 16)
        status = json.loads(sh(["dvc", "status", "prepare", "--json"], path, env).stdout)
        assert {"changed deps": {"data/raw": "modified"}} in status["prepare"]
    finally:
        shutil.rmtree(path / "data" / "raw" / "MNIST")
    assert json.loads(sh(["dvc", "status", "prepare", "--json"], path, env).stdout) == {}
