from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from nas.errors import UserError
from nas.estimation import Result
from nas.search import open_study, run_search
from nas.spaces import SPACES
from nas.strategies import make_sampler

space = SPACES["nb201"]


def fake_objective(number, arch, on_epoch_end) -> Result:
    """The fast fake estimator: a fixed function of the architecture, with a two-epoch learning curve."""
    score = sum(op.startswith("nor_conv") for op in arch.ops) / 6
    for epoch, value in enumerate((score / 2, score)):
        on_epoch_end(epoch, {"val_accuracy": value, "train_loss": 1 - value})
    return Result(score, (score / 2, score), (1.0, 0.5), 100, 0.01)


def test_search_fills_the_study_with_n_completed_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    study = open_study(storage, "s", make_sampler("regularized_evolution", space, 0), {"k": 1})
    lines = []
    done = run_search(study, space, fake_objective, 12, lines.append)
    assert len(done) == 12 and len(lines) == 12 and "trial 12/12" in lines[-1]
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 12
    assert trials[0].intermediate_values == {0: trials[0].value / 2, 1: trials[0].value}
    assert all(space.decode(t.user_attrs["arch"]) == space.from_params(t.params) for t in trials)
    # Raising the budget on the same study runs only the missing trials.
    assert len(run_search(study, space, fake_objective, 15, lines.append)) == 15
    assert len(study.get_trials()) == 15


def test_reopening_a_study_with_other_settings_is_refused(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    open_study(storage, "s", make_sampler("random", space, 0), {"epochs": 4})
    with pytest.raises(UserError, match=r"study 's' .* other settings \(epochs\)"):
        open_study(storage, "s", make_sampler("random", space, 0), {"epochs": 5})


def test_objective_error_fails_the_trial_and_propagates(tmp_path):
    study = open_study(f"sqlite:///{tmp_path / 'o.db'}", "s", make_sampler("random", space, 0), {})

    def broken(number, arch, on_epoch_end):
        on_epoch_end(0, {"val_accuracy": 0.5})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_search(study, space, broken, 3, lambda _: None)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL and trial.intermediate_values == {0: 0.5}


def _tiny_params(folder: Path, prepared: Path, storage: str) -> Path:
    params = {
        "data": {"out": str(prepared)},
        "search": {"strategy": "regularized_evolution", "strategy_options": {"population_size": 4, "sample_size": 2},
                   "n_trials": 10, "epochs": 1, "channels": 4, "cells_per_stage": 1, "batch_size": 256,
                   "storage": storage, "study_name": "resume"},
        "tracking": {"experiment": "resume"},
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _search(folder: Path, params: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nas.cli", "search", "--params", str(params)], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigkill_mid_search_then_restart_ends_as_an_uninterrupted_search(tmp_path, prepared_digits, mlflow_uri):
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_uri, "PYTHONPATH": str(Path(__file__).parents[2])}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for folder in (clean, killed):
        folder.mkdir()
    clean_storage, killed_storage = f"sqlite:///{clean / 'optuna.db'}", f"sqlite:///{killed / 'optuna.db'}"
    reference = _search(clean, _tiny_params(clean, prepared_digits, clean_storage), env)

    params = _tiny_params(killed, prepared_digits, killed_storage)
    proc = _search(killed, params, env)
    deadline = time.monotonic() + 240
    while True:  # kill -9 while a trial is running, after a few have completed
        assert proc.poll() is None and time.monotonic() < deadline, "search ended before it could be killed"
        try:
            trials = optuna.load_study(study_name="resume", storage=killed_storage).get_trials(deepcopy=False)
        except KeyError:
            trials = []
        states = [t.state for t in trials]
        if states.count(TrialState.COMPLETE) >= 3 and states[-1] == TrialState.RUNNING:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.01)
    assert proc.returncode == -signal.SIGKILL

    restarted = _search(killed, params, env)
    out = restarted.communicate(timeout=240)[0]
    assert restarted.returncode == 0, out
    assert "marked failed" in out
    reference_out = reference.communicate(timeout=240)[0]
    assert reference.returncode == 0, reference_out

    study = optuna.load_study(study_name="resume", storage=killed_storage)
    numbers = [t.number for t in study.get_trials()]
    assert len(numbers) == len(set(numbers))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 10
    assert len(study.get_trials(states=(TrialState.FAIL,))) == 1
    expected = optuna.load_study(study_name="resume", storage=clean_storage).get_trials(states=(TrialState.COMPLETE,))
    assert [t.params for t in complete] == [t.params for t in expected]
    assert [t.value for t in complete] == [t.value for t in expected]


@pytest.mark.parametrize("url", ["foo://bar", "sqlite:////proc/no/such/dir.db"])
def test_unusable_storage_is_a_user_error(url):
    with pytest.raises(UserError, match=r"search.storage: cannot open"):
        open_study(url, "s", make_sampler("random", space, 0), {})
