import json
import subprocess

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

from nas.errors import UserError
from nas.tracking import EXPERIMENT_KIND_TAG, SearchTracker, log_bench, log_results, open_tracking, tracking_uri


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
    assert [(m.step, m.value) for m in history] == [(1, 0.6), (2, 0.8)]  # step: epochs trained
    local = client.download_artifacts(best[0].info.run_id, "arch.json")
    assert json.load(open(local)) == {"arch": "arch-1"}


def test_a_search_that_ends_closes_the_runs_of_attempts_a_dead_worker_left(mlflow_uri):
    """A Dask worker killed mid-trial leaves its trial run RUNNING; Dask runs the trial again on another worker, in
    another run, and the search ends: the lost attempt's run is closed as KILLED, the rest are left as they were."""
    tracker = SearchTracker.start(mlflow_uri, "exp", "study-lost", {}, {})
    tracker.start_trial(0, "a", {})  # the worker running it dies
    again = tracker.start_trial(0, "a", {})
    again.finish({"n_params": 1})
    done = tracker.start_trial(1, "b", {})
    done.finish({"n_params": 1})
    tracker.finish({})
    statuses = sorted((r.data.tags["optuna_trial_number"], r.info.status) for r in tracker.trial_runs())
    assert statuses == [("0", "FINISHED"), ("0", "KILLED"), ("1", "FINISHED")]
    assert MlflowClient(mlflow_uri).get_run(tracker.parent_run_id).info.status == "FINISHED"


def test_restart_reuses_parent_and_marks_dead_trials_killed(mlflow_uri, tmp_path):
    import optuna

    study = optuna.create_study(study_name="study-b", storage=f"sqlite:///{tmp_path / 'o.db'}")
    first = SearchTracker.start(mlflow_uri, "exp", "study-b", {"budget": 3}, {}, study=study)
    first.start_trial(0, "a", {})  # the process dies here; the child stays RUNNING
    first.flush()
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # found lost by the next start (settle)
    again = SearchTracker.start(mlflow_uri, "exp", "study-b", {"budget": 3}, {}, study=study)
    assert again.parent_run_id == first.parent_run_id
    again.reconcile(study)
    (child,) = again.trial_runs()
    assert child.info.status == "KILLED"
    assert child.data.tags["optuna_trial_state"] == "FAIL" and "lost" in child.data.tags["fail_reason"]


def test_a_resumed_search_completes_the_runs_of_trials_told_before_their_writes_reached_mlflow(mlflow_uri, tmp_path):
    """A trial is told to Optuna while its run is written on the writer thread: a kill between the two leaves a
    COMPLETE (or PRUNED) trial whose run is RUNNING, then KILLED, without its curve. The next start repairs it from
    the study; a lost trial's run gets the epochs it trained."""
    import optuna

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}")
    tracker = SearchTracker.start(mlflow_uri, "exp", "s", {}, {}, study=study)
    states = {0: "COMPLETE", 1: "PRUNED", 2: "FAIL"}
    for number, state in states.items():
        run = tracker.start_trial(number, f"arch-{number}", {"epochs": 3})
        run.on_epoch_end(0, {"val_accuracy": 0.5, "train_loss": 1.0})  # buffered: never sent before the kill
        trial = study.ask()
        trial.set_user_attr("arch", f"arch-{number}")
        for step, value in ((1, 0.5), (2, 0.6), (3, 0.7))[: 2 if state == "PRUNED" else 3]:
            trial.report(value, step)
        if state == "PRUNED":
            trial.set_user_attr("pruned_at_epoch", 2)
            trial.set_user_attr("prune_reason", "not in the top 1/3")
        if state != "FAIL":
            trial.set_user_attr("seconds", 1.5)
            trial.set_user_attr("n_params", 1234)
        study.tell(trial, 0.7 if state == "COMPLETE" else None, state=getattr(optuna.trial.TrialState, state))
    tracker.flush()  # the runs exist, RUNNING: the process dies here

    again = SearchTracker.start(mlflow_uri, "exp", "s", {}, {}, study=study)
    again.reconcile(study)
    again.reconcile(study)  # twice: nothing is logged twice
    client = MlflowClient(mlflow_uri)
    runs = {r.data.tags["optuna_trial_number"]: r for r in again.trial_runs()}
    curve = {n: [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, "val_accuracy")]
             for n, r in runs.items()}
    assert curve == {"0": [(1, 0.5), (2, 0.6), (3, 0.7)], "1": [(1, 0.5), (2, 0.6)], "2": [(1, 0.5), (2, 0.6), (3, 0.7)]}
    assert [runs[n].info.status for n in "012"] == ["FINISHED", "FINISHED", "KILLED"]
    assert runs["0"].data.metrics == {"val_accuracy": 0.7, "n_params": 1234, "train_seconds": 1.5}
    assert runs["1"].data.tags["prune_reason"] == "not in the top 1/3" and runs["1"].data.metrics["pruned_at_epoch"] == 2
    assert [runs[n].data.tags["optuna_trial_state"] for n in "012"] == ["COMPLETE", "PRUNED", "FAIL"]
    arch = json.loads(client.download_artifacts(runs["0"].info.run_id, "arch.json", str(tmp_path)) and
                      (tmp_path / "arch.json").read_text())
    assert arch == {"arch": "arch-0"}


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


def test_runs_a_dead_process_left_running_are_closed_at_the_next_start(mlflow_uri, tmp_path):
    """A search killed with -9 leaves its parent and trial runs RUNNING; the next search in the experiment closes
    them as KILLED, while runs of live processes (this one) stay as they are."""
    import subprocess
    import sys

    script = (
        "import os\nfrom nas.tracking import SearchTracker\n"
        f"t = SearchTracker.start({mlflow_uri!r}, 'exp', 'dead-study', {{}}, {{}})\n"
        "t.start_trial(0, 'a', {})\nt.flush()\nos._exit(9)  # dies without closing anything\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False, timeout=120)
    live = SearchTracker.start(mlflow_uri, "exp", "live-study", {}, {})
    live.start_trial(0, "b", {})
    live.flush()
    SearchTracker.start(mlflow_uri, "exp", "next-study", {}, {})

    client = MlflowClient(mlflow_uri)
    status = {(r.data.tags["optuna_study"] if "optuna_study" in r.data.tags else r.data.tags["mlflow.parentRunId"]):
              r.info.status for r in client.search_runs([live.experiment_id])}
    dead = client.search_runs([live.experiment_id], "tags.optuna_study = 'dead-study'")[0]
    assert status["dead-study"] == "KILLED" and status[dead.info.run_id] == "KILLED"
    assert status["live-study"] == "RUNNING" and status[live.parent_run_id] == "RUNNING"


def test_storage_tag_and_errors_never_show_a_password(mlflow_uri):
    tracker = SearchTracker.start(mlflow_uri, "exp", "s", {}, {}, storage="postgresql://nas:s3cret@db:5432/optuna")
    run = MlflowClient(mlflow_uri).get_run(tracker.parent_run_id)
    assert run.data.tags["optuna_storage"] == "postgresql://nas:***@db:5432/optuna"
    with pytest.raises(UserError) as info:
        SearchTracker.start("postgresql+psycopg2://nas:s3cret@127.0.0.1:1/mlflow", "exp", "s", {}, {})
    assert "s3cret" not in str(info.value) and "nas:***@127.0.0.1:1/mlflow" in str(info.value)


def test_a_failed_trial_run_says_why(mlflow_uri):
    tracker = SearchTracker.start(mlflow_uri, "exp", "s", {}, {})
    tracker.start_trial(0, "a", {}).fail("training diverged at epoch 2 (train_loss nan)")
    tracker.flush()
    (child,) = tracker.trial_runs()
    assert child.info.status == "FAILED"
    assert child.data.tags["fail_reason"] == "training diverged at epoch 2 (train_loss nan)"


def test_experiments_open_on_the_training_view_new_or_old_and_a_chosen_kind_stays(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    client.create_experiment("old")  # as made before the tag, or by hand
    client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    for name in ("new", "old", "chosen"):
        open_tracking(mlflow_uri, name)
    kinds = [client.get_experiment_by_name(name).tags.get(EXPERIMENT_KIND_TAG) for name in ("new", "old", "chosen")]
    assert kinds == ["custom_model_development", "custom_model_development", "genai_development"]


def test_every_run_records_the_git_commit_in_mlflows_own_tag(mlflow_uri, tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "code"], cwd=tmp_path, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True,
                          check=True).stdout.strip()
    tracker = SearchTracker.start(mlflow_uri, "exp", "s", {}, {})
    tracker.start_trial(0, "a", {}).finish({})
    tracker.finish({})
    log_bench(mlflow_uri, "bench", {}, {"random": {"mean": 0.5}}, [])
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 4 and {r.data.tags.get(MLFLOW_GIT_COMMIT) for r in runs} == {head}


def test_results_of_a_later_stage_land_on_a_finished_run(mlflow_uri, tmp_path):
    client = MlflowClient(mlflow_uri)
    run_id = client.create_run(open_tracking(mlflow_uri, "exp")[1]).info.run_id
    client.set_terminated(run_id)
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "metrics.json").write_text("{}")
    log_results(mlflow_uri, run_id, {"test_accuracy": 0.9}, [tmp_path / "metrics.json"])
    log_results(mlflow_uri, run_id, artifacts=[tmp_path / "model.onnx"], folder="export")
    run = client.get_run(run_id)
    assert run.data.metrics == {"test_accuracy": 0.9} and run.info.status == "FINISHED"
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["export", "metrics.json"]
    assert [a.path for a in client.list_artifacts(run_id, "export")] == ["export/model.onnx"]


def test_a_new_study_of_an_old_name_gets_a_new_parent_run_and_its_resume_the_same(mlflow_uri, tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    old = optuna.create_study(study_name="s", storage=storage)
    first = SearchTracker.start(mlflow_uri, "exp", "s", {"epochs": 2}, {}, storage=storage, study=old)
    assert old.user_attrs["mlflow_parent_run_id"] == first.parent_run_id
    old.add_trial(optuna.trial.create_trial(value=0.5))
    resumed = optuna.load_study(study_name="s", storage=storage)
    again = SearchTracker.start(mlflow_uri, "exp", "s", {"epochs": 2}, {}, storage=storage, study=resumed)
    assert again.parent_run_id == first.parent_run_id  # a resume: the study's own run

    optuna.delete_study(study_name="s", storage=storage)  # the same name, another search (epochs 1)
    new = optuna.create_study(study_name="s", storage=storage)
    fresh = SearchTracker.start(mlflow_uri, "exp", "s", {"epochs": 1}, {}, storage=storage, study=new)
    assert fresh.parent_run_id != first.parent_run_id
    assert MlflowClient(mlflow_uri).get_run(fresh.parent_run_id).data.params["epochs"] == "1"

    # A study from before the record, with trials: found by its tags, and recorded from then on
    legacy = optuna.create_study(study_name="legacy", storage=storage)
    made = SearchTracker.start(mlflow_uri, "exp", "legacy", {}, {}, storage=storage)
    legacy.add_trial(optuna.trial.create_trial(value=0.5))
    found = SearchTracker.start(mlflow_uri, "exp", "legacy", {}, {}, storage=storage, study=legacy)
    assert found.parent_run_id == made.parent_run_id == legacy.user_attrs["mlflow_parent_run_id"]


def test_a_search_or_stage_run_again_with_nothing_new_adds_no_metric_points(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    for completed in (4, 4, 6):  # a run, a rerun that trains nothing, n_trials raised to 6
        tracker = SearchTracker.start(mlflow_uri, "exp", "s", {"epochs": 2}, {}, settings={"n_trials": completed})
        tracker.log_series("hypervolume", [1.0, 2.0, 2.0, 3.0, 3.0, 4.0][:completed], range(completed))
        tracker.finish({"completed_trials": completed, "best_val_accuracy": 0.9})
    history = {name: [(m.step, m.value) for m in client.get_metric_history(tracker.parent_run_id, name)]
               for name in ("hypervolume", "completed_trials", "best_val_accuracy")}
    assert history == {"hypervolume": [(0, 1.0), (1, 2.0), (2, 2.0), (3, 3.0), (4, 3.0), (5, 4.0)],
                       "completed_trials": [(0, 4.0), (0, 6.0)], "best_val_accuracy": [(0, 0.9)]}
    assert client.get_run(tracker.parent_run_id).data.tags["n_trials"] == "6"  # a setting: this start's
    # A worse trial moves the hypervolume's reference point: every step changes, and is logged again
    tracker = SearchTracker.start(mlflow_uri, "exp", "s", {"epochs": 2}, {})
    tracker.log_series("hypervolume", [2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0], range(7))
    latest = {}
    for m in sorted(client.get_metric_history(tracker.parent_run_id, "hypervolume"), key=lambda m: m.timestamp):
        latest[m.step] = m.value
    assert latest == {0: 2.0, 1: 3.0, 2: 3.0, 3: 4.0, 4: 4.0, 5: 5.0, 6: 5.0}
    run_id = client.create_run(open_tracking(mlflow_uri, "exp")[1]).info.run_id
    log_results(mlflow_uri, run_id, {"n_params": 30802})  # retrain logs it, evaluate reports it again
    log_results(mlflow_uri, run_id, {"n_params": 30802, "test_accuracy": 0.9})
    assert [m.value for m in client.get_metric_history(run_id, "n_params")] == [30802]


def test_a_failing_store_is_one_line_and_closing_a_failed_search_adds_no_second_error(mlflow_uri):
    import sqlite3

    from nas.tracking import refused_by_store

    expected = (r"^tracking.uri: the MLflow store 'sqlite:///.*' failed while writing the trials' runs \(database is "
                r"locked\); the Optuna study keeps every trial: run the search again once the store answers$")
    with pytest.raises(UserError, match=expected), refused_by_store(mlflow_uri, "writing the trials' runs"):
        raise sqlite3.OperationalError("database is locked")

    tracker = SearchTracker.start(mlflow_uri, "exp", "s", {}, {})

    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    tracker.submit(locked)  # a trial's write the store refused, met when the search fails for its own reason
    tracker.fail()  # does not raise: the search's own error is the one reported
    assert MlflowClient(mlflow_uri).get_run(tracker.parent_run_id).info.status == "FAILED"
