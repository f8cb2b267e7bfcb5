"""The one-shot search stage (nas.search.oneshot) on the digits data: real supernet training, a real Optuna SQLite
study and MLflow store; kill -9 and resume as for the black-box searches."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from nas.config import Params
from nas.errors import UserError
from nas.search.oneshot import EPOCH_ATTR, checkpoint_path
from nas.spaces import SPACES
from nas.strategy_registry import ONESHOT_KEYS
from tests.conftest import flip_a_tensor_bit

ROOT = Path(__file__).parents[2]


def _params(folder: Path, prepared: Path, strategy: str, epochs: int, batch_size: int = 128) -> dict:
    return {"data": {"out": str(prepared)},
            "search": {"strategy": strategy, "space": "nb201", "channels": 4, "cells_per_stage": 1,
                       "storage": f"sqlite:///{folder / 'optuna.db'}", "study_name": "oneshot",
                       "oneshot": {"epochs": epochs, "batch_size": batch_size}},
            "tracking": {"experiment": "oneshot"}}


def test_every_epoch_is_a_trial_and_the_run_holds_losses_alphas_heatmaps_and_derived_archs(
        tmp_path, prepared_digits, mlflow_uri):
    from nas.search.stage import search

    lines: list[str] = []
    summary = search(Params.model_validate(_params(tmp_path, prepared_digits, "darts", 2)), lines.append)
    study = optuna.load_study(study_name="oneshot", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert [t.user_attrs[EPOCH_ATTR] for t in trials] == [1, 2]
    space = SPACES["nb201"]
    for trial in trials:  # each trial is the architecture derived that epoch, its params the space's
        assert space.from_params(trial.params) == space.decode(trial.user_attrs["arch"])
        assert 0 <= trial.value <= 1 and len(trial.user_attrs["alphas"]["cell"]) == 6
    assert summary["best"]["arch"] == trials[-1].user_attrs["arch"]  # DARTS keeps the last derived architecture
    assert [d["arch"] for d in summary["oneshot"]["derived"]] == [t.user_attrs["arch"] for t in trials]
    assert json.loads(Path("models/search.json").read_text()) == summary
    assert not checkpoint_path("oneshot", f"sqlite:///{tmp_path / 'optuna.db'}").exists()  # the study holds it now
    assert sum("epoch" in line and "derived val_acc" in line for line in lines) == 2  # a line per epoch

    from nas.reports import write_search_reports
    from nas.search.runner import records

    files = {f.name for f in write_search_reports(study, records(study), "darts on nb201", tmp_path / "reports")}
    assert {"alphas.png", "oneshot_epochs.png", "trials.png"} <= files

    client = MlflowClient(mlflow_uri)
    run = client.get_run(summary["mlflow"]["parent_run_id"])
    assert run.info.status == "FINISHED" and run.data.params["oneshot.epochs"] == "2"
    oneshot = {k.removeprefix("oneshot.") for k in run.data.params if k.startswith("oneshot.")}
    assert oneshot == set(ONESHOT_KEYS["darts"])  # not the settings first-order DARTS never reads (unroll_r, tau_*)
    losses = client.get_metric_history(run.info.run_id, "supernet_train_loss")
    assert [m.step for m in losses] == [1, 2]
    alpha = [k for k in run.data.metrics if k.startswith("alpha/cell/")]
    assert len(alpha) == 6 * 5 and "alpha/cell/0_to_1/nor_conv_3x3" in alpha
    rows = [sum(run.data.metrics[f"alpha/cell/{e}/{op}"] for op in space_ops()) for e in ("0_to_1", "2_to_3")]
    assert rows == pytest.approx([1.0, 1.0])  # softmax per edge
    artifacts = {a.path for folder in ("alphas/epoch_001", "derived") for a in client.list_artifacts(
        run.info.run_id, folder)}
    assert {"alphas/epoch_001/alphas.png", "derived/epoch_001.txt", "derived/epoch_002.txt"} <= artifacts


def test_parameter_free_share_of_derived_cells():
    from nas.oneshot.analysis import parameter_free_share
    from nas.spaces.darts import DARTS_V2
    from nas.spaces.nb201 import decode

    assert parameter_free_share(decode("|skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_1x1~1|"
                                       "skip_connect~2|")) == pytest.approx(4 / 6)
    assert parameter_free_share(DARTS_V2) == pytest.approx(2 / 8)  # its normal cell: two skip connections


def space_ops() -> tuple[str, ...]:
    from nas.spaces.nb201 import OP_NAMES

    return OP_NAMES


def _search(folder: Path, params: dict, env: dict) -> subprocess.Popen:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return subprocess.Popen([sys.executable, "-m", "nas.cli", "search", "--params", str(path)], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _epochs(storage: str) -> list[tuple]:
    study = optuna.load_study(study_name="oneshot", storage=storage)
    return [(t.user_attrs[EPOCH_ATTR], t.user_attrs["arch"], t.value, t.user_attrs["alphas"])
            for t in study.get_trials(states=(TrialState.COMPLETE,))]


def test_sigkill_mid_supernet_training_then_restart_ends_with_the_same_alphas_and_architecture(
        tmp_path, prepared_digits, mlflow_uri):
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PYTHONPATH": str(ROOT)}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for folder in (clean, killed):
        folder.mkdir()
    reference = _search(clean, _params(clean, prepared_digits, "gdas", 8, 32), env)
    proc = _search(killed, _params(killed, prepared_digits, "gdas", 8, 32), env)
    storage = f"sqlite:///{killed / 'optuna.db'}"
    deadline = time.monotonic() + 240
    while True:  # kill -9 during an epoch, after two have been recorded
        assert proc.poll() is None and time.monotonic() < deadline, "search ended before it could be killed"
        try:
            done = len(_epochs(storage))
        except KeyError:  # the study is not created yet
            done = 0
        if done >= 2:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.02)
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint_path("oneshot", storage).relative_to("checkpoints")  # where the resume reads from
    assert (killed / checkpoint_path("oneshot", storage)).is_file()

    restarted = _search(killed, _params(killed, prepared_digits, "gdas", 8, 32), env)
    out = restarted.communicate(timeout=240)[0]
    assert restarted.returncode == 0, out
    assert "resuming after epoch" in out, out
    reference_out = reference.communicate(timeout=240)[0]
    assert reference.returncode == 0, reference_out

    resumed, uninterrupted = _epochs(storage), _epochs(f"sqlite:///{clean / 'optuna.db'}")
    assert [e[0] for e in resumed] == [1, 2, 3, 4, 5, 6, 7, 8]  # each epoch once, none lost or repeated
    assert resumed == uninterrupted  # same α after every epoch, same derived architectures and scores
    found = json.loads((killed / "models" / "search.json").read_text())
    assert found["best"] == json.loads((clean / "models" / "search.json").read_text())["best"]


@pytest.mark.parametrize("damage", ["garbage", "a list", "a flipped bit"])
def test_a_corrupt_checkpoint_is_one_line_and_nothing_is_written(damage, tmp_path, prepared_digits, mlflow_uri,
                                                                 capsys, monkeypatch):
    import torch

    from nas.cli import main
    from nas.oneshot import OneShotConfig, make_search
    from nas.spaces import NetworkConfig

    params = _params(tmp_path, prepared_digits, "snas", 2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    bad = checkpoint_path("oneshot", params["search"]["storage"])
    bad.parent.mkdir()
    if damage == "garbage":
        bad.write_bytes(b"PK\x03\x04 not a checkpoint")
    elif damage == "a list":  # a readable torch file, of something else
        torch.save([1, 2], bad)
    else:  # this search's own checkpoint after one epoch, one bit of its supernet's weights flipped on disk
        searcher = make_search("snas", "nb201", NetworkConfig(4, 1, 1, 10), OneShotConfig(epochs=2, batch_size=128), 0)
        torch.save({"search": searcher.state_dict(), "history": []}, bad)
        flip_a_tensor_bit(bad)
    code = main(["search", "--params", "params.yaml"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(bad) in err[0] and "one-shot checkpoint" in err[0], err
    assert ("fails its CRC-32 check" in err[0]) == (damage == "a flipped bit")
    assert not (tmp_path / "models").exists() and not (tmp_path / "optuna.db").exists()


@pytest.mark.parametrize(("strategy", "metric"), [("darts", "derived_val_accuracy"), ("spos", "supernet_train_loss")])
def test_an_epoch_checkpointed_but_killed_before_mlflow_is_logged_on_resume(strategy, metric, tmp_path,
                                                                            prepared_digits, mlflow_uri, monkeypatch):
    """A kill between the epoch's checkpoint and its MLflow logging: the resumed search logs that epoch, once."""
    from nas.search.stage import search
    from nas.tracking import SearchTracker

    params = Params.model_validate(_params(tmp_path, prepared_digits, strategy, 3) | {"search": {
        **_params(tmp_path, prepared_digits, strategy, 3)["search"], "n_trials": 2, "strategy_options": {}}})
    log_epoch = SearchTracker.log_epoch

    def killed_at_epoch_2(self, epoch, *args, **kwargs):
        if epoch == 2:
            raise KeyboardInterrupt  # as a kill: after the checkpoint, before anything of epoch 2 reaches MLflow
        return log_epoch(self, epoch, *args, **kwargs)

    monkeypatch.setattr(SearchTracker, "log_epoch", killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        search(params, lambda _: None)
    monkeypatch.setattr(SearchTracker, "log_epoch", log_epoch)
    lines: list[str] = []
    summary = search(params, lines.append)
    assert any("resuming after epoch 2" in line for line in lines), lines
    client = MlflowClient(mlflow_uri)
    assert [m.step for m in client.get_metric_history(summary["mlflow"]["parent_run_id"], metric)] == [1, 2, 3]
    if strategy == "darts":
        logged = {f.path for f in client.list_artifacts(summary["mlflow"]["parent_run_id"], "derived")}
        assert logged == {f"derived/epoch_00{e}.txt" for e in (1, 2, 3)}


def test_a_checkpoint_of_other_settings_is_refused(tmp_path, prepared_digits, mlflow_uri):
    """A checkpoint a 1-epoch GDAS search wrote, under the name a 2-epoch one reads: refused, not half-loaded."""
    import torch

    from nas.oneshot import OneShotConfig, make_search
    from nas.search.stage import search
    from nas.spaces import NetworkConfig

    params = _params(tmp_path, prepared_digits, "gdas", 2)
    state = make_search("gdas", "nb201", NetworkConfig(4, 1, 1, 10), OneShotConfig(epochs=1), 0).state_dict()
    path = checkpoint_path("oneshot", params["search"]["storage"])
    path.parent.mkdir()
    torch.save({"search": state, "history": []}, path)
    with pytest.raises(UserError, match="delete it to start the search over"):
        search(Params.model_validate(params), lambda _: None)


@pytest.mark.parametrize("strategy", ["spos", "enas"])
def test_weight_sharing_search_scores_n_trials_with_the_estimator_and_extends_deterministically(
        strategy, tmp_path, prepared_digits, mlflow_uri):
    """Phase 1 trains the supernet, phase 2 is the search loop over the estimator (evolution for SPOS, the trained
    controller for ENAS). Raising n_trials later extends the study with what one longer search would have found."""
    from nas.search.stage import search

    def params(folder: Path, n_trials: int) -> Params:
        raw = _params(folder, prepared_digits, strategy, 2)
        raw["search"].update(n_trials=n_trials, strategy_options={})
        return Params.model_validate(raw)

    short, long = tmp_path / "short", tmp_path / "long"
    short.mkdir(), long.mkdir()
    search(params(short, 4), lambda _: None)
    found = search(params(short, 6), lambda _: None)
    reference = search(params(long, 6), lambda _: None)
    trials = optuna.load_study(study_name="oneshot", storage=f"sqlite:///{short / 'optuna.db'}").get_trials()
    expected = optuna.load_study(study_name="oneshot", storage=f"sqlite:///{long / 'optuna.db'}").get_trials()
    assert [(t.params, t.value) for t in trials] == [(t.params, t.value) for t in expected]
    assert len(trials) == 6 and all(0 <= t.value <= 1 for t in trials)
    assert found["best"] == reference["best"] and found["best"]["val_accuracy"] == max(t.value for t in trials)
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("oneshot").experiment_id],
                              f"tags.mlflow.parentRunId = '{reference['mlflow']['parent_run_id']}'")
    assert len(runs) == 6  # a child run per architecture scored


def test_a_finished_one_shot_search_run_again_trains_nothing_and_finds_the_same(tmp_path, prepared_digits, mlflow_uri):
    """dvc repro runs the stage again after any change to its deps: the study already holds every epoch."""
    from nas.search.stage import search

    params = Params.model_validate(_params(tmp_path, prepared_digits, "gdas", 2))
    first = search(params, lambda _: None)
    lines: list[str] = []
    again = search(params, lines.append)
    assert again["best"] == first["best"] and again["oneshot"] == first["oneshot"]
    assert not any("epoch 1/2" in line for line in lines), lines
    study = optuna.load_study(study_name="oneshot", storage=params.search.storage)
    assert len(study.get_trials()) == 2
