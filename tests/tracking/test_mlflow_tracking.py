import json

import pytest
from mlflow.tracking import MlflowClient

from nas.errors import UserError
from nas.tracking import SearchTracker, tracking_uri


def test_parent_with_nested_trials_metrics_per_epoch_and_artifact(mlflow_uri):
    tracker = SearchTracker.start(mlflow_uri, "exp", "study-a", {"strategy": "random", "budget": 2}, {"git_commit": "abc"})
    for number, curve in ((0, [0.5, 0.7]), (1, [0.6, 0.8])):
        run = tracker.start_trial(number, f"arch-{number}", {"epochs": 2})
        for epoch, acc in enumerate(curve):
            run.on_epoch_end(epoch, {"val_accuracy": acc, "train_loss": 1 - acc})
        run.finish({"n_params": 10})
    tracker.finish({"best_val_accuracy": 0.8})

    client = MlflowClient(mlflow_uri)
    parent = client.get_run(tracker.parent_run_id)
    assert parent.data.params == {"strategy": "random", "budget": "2"}
    assert parent.data.tags["git_commit"] == "abc" and parent.info.status == "FINISHED"
    children = tracker.trial_runs()
    assert sorted(c.data.tags["optuna_trial_number"] for c in children) == ["0", "1"]
    best = client.search_runs([tracker.experiment_id], "tags.nas_role = 'trial'", order_by=["metrics.val_accuracy DESC"])
    assert best[0].data.params["arch"] == "arch-1" and best[0].data.metrics["val_accuracy"] == 0.8
    history = client.get_metric_history(best[0].info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [(0, 0.6), (1, 0.8)]
    local = client.download_artifacts(best[0].info.run_id, "arch.json")
    assert json.load(open(local)) == {"arch": "arch-1"}


def test_restart_reuses_parent_and_marks_dead_trials_killed(mlflow_uri):
    first = SearchTracker.start(mlflow_uri, "exp", "study-b", {"budget": 3}, {})
    first.start_trial(0, "a", {})  # the process dies here; the child stays RUNNING
    first.flush()
    again = SearchTracker.start(mlflow_uri, "exp", "study-b", {"budget": 3}, {})
    assert again.parent_run_id == first.parent_run_id
    again.mark_killed([0])
    (child,) = again.trial_runs()
    assert child.info.status == "KILLED"


def test_env_var_wins_over_params(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert tracking_uri("sqlite:///mlflow.db") == "sqlite:///elsewhere.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking_uri("sqlite:///mlflow.db") == "sqlite:///mlflow.db"


def test_same_study_name_in_another_storage_is_another_search(mlflow_uri):
    a = SearchTracker.start(mlflow_uri, "exp", "study", {}, {}, storage="sqlite:///a.db")
    b = SearchTracker.start(mlflow_uri, "exp", "study", {}, {}, storage="sqlite:///b.db")
    assert a.parent_run_id != b.parent_run_id


def test_unusable_tracking_uri_is_a_user_error():
    with pytest.raises(UserError, match=r"^tracking.uri: cannot open the MLflow store 'foo://bar' \(Model registry"):
        SearchTracker.start("foo://bar", "exp", "s", {}, {})
