"""search.inherit when a parent's weights file is not what the search wrote: corrupt is refused in one line naming it;
missing (deleted, or written on another host) leaves the child training from scratch, and its MLflow run says so."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import torch

from nas.config import Params
from nas.data import load_prepared, normalize
from nas.errors import UserError
from nas.search.stage import make_objective, save_trial_weights, search
from nas.spaces import SPACES
from nas.tracking import SearchTracker, flush_trackers
from tests.conftest import flip_a_tensor_bit

PARENT, CHILD = "conv:k3:w1:s1 | conv:k3:w1:s1", "conv:k3:w2:s1 | conv:k3:w1:s1"


@pytest.fixture
def child_of_trial_0(prepared_digits, mlflow_uri, tmp_path):
    """A macro search with inheritance (child_epochs 1 of 2), its trial objective and its checkpoint folder."""
    params = Params.model_validate({
        "data": {"out": str(prepared_digits)},
        "search": {"space": "macro", "strategy": "regularized_evolution", "epochs": 2, "channels": 4,
                   "batch_size": 256, "inherit": True, "child_epochs": 1},
        "tracking": {"uri": mlflow_uri, "experiment": "inherit"}})
    tracker = SearchTracker.start(mlflow_uri, "inherit", "study", {}, {})
    objective = make_objective(params, load_prepared(prepared_digits), tracker, "cpu", "study")
    return objective, Path(objective.checkpoints), tracker


def _child_run(tracker: SearchTracker) -> mlflow.entities.Run:
    flush_trackers()
    (run,) = tracker.client.search_runs([tracker.experiment_id], "tags.optuna_trial_number = '1'")
    return run


def test_a_child_inherits_its_parents_saved_weights_and_trains_child_epochs(child_of_trial_0):
    objective, folder, tracker = child_of_trial_0
    space = SPACES["macro"]
    parent = objective(0, space.decode(PARENT), lambda *_: None)
    assert len(parent.learning_curve) == 2 and (folder / "trial-0.pt").is_file()

    child = objective(1, space.decode(CHILD), lambda *_: None, parent=0)
    assert len(child.learning_curve) == 1
    params = _child_run(tracker).data.params
    assert params["parent_trial"] == "0" and params["epochs"] == "1" and "copied" in params["inherited"]


def test_the_child_starts_as_its_parent_function_preserving(child_of_trial_0, prepared_digits):
    """The network the child trains from computes what the parent's saved weights compute (a wider first layer
    is Net2Wider: function-preserving), not a fresh initialisation."""
    objective, folder, _ = child_of_trial_0
    space = SPACES["macro"]
    objective(0, space.decode(PARENT), lambda *_: None)
    parent = space.build(space.decode(PARENT), objective.network)
    parent.load_state_dict(torch.load(folder / "trial-0.pt", weights_only=True)["state_dict"])
    child, _ = objective._inherit(space, space.decode(CHILD), 0)
    data = load_prepared(prepared_digits)
    x = normalize(data.val.x[:64], data.manifest)
    with torch.no_grad():
        expected, got = parent.eval()(x), child.eval()(x)
    fresh = space.build(space.decode(CHILD), objective.network).eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(x), expected, atol=1e-3)  # the check can tell a fresh network apart
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_a_missing_parent_checkpoint_trains_the_child_from_scratch_and_says_so(child_of_trial_0):
    objective, folder, tracker = child_of_trial_0
    with pytest.warns(UserWarning, match="trial #1: its parent trial #0's weights: nothing: .*trial-0.pt is missing"):
        child = objective(1, SPACES["macro"].decode(CHILD), lambda *_: None, parent=0)
    assert len(child.learning_curve) == 2  # search.epochs, not child_epochs
    params = _child_run(tracker).data.params
    assert params["parent_trial"] == "0" and params["epochs"] == "2"
    assert params["inherited"].startswith(f"nothing: {folder / 'trial-0.pt'} is missing")
    assert (folder / "trial-1.pt").is_file()  # its own weights, for its children


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", "misfit", "another trial's", "flipped", "a list"])
def test_a_corrupt_or_foreign_parent_checkpoint_is_one_user_error_naming_it(child_of_trial_0, content):
    objective, folder, _ = child_of_trial_0
    path = folder / "trial-0.pt"
    parent = SPACES["macro"].build(SPACES["macro"].decode(PARENT), objective.network)
    if content == "misfit":  # a real checkpoint, of a network whose tensors do not fit the architecture it names
        save_trial_weights(folder, 0, "conv:k3:w4:s1", parent)
    elif content == "another trial's":  # trial 3's file copied over trial 0's: it loads, and is not the parent
        save_trial_weights(folder, 3, PARENT, parent)
        (folder / "trial-3.pt").rename(path)
    elif content == "a list":  # a readable torch file of something else
        folder.mkdir(parents=True)
        torch.save([1, 2], path)
    elif content == "flipped":  # the parent's own file, one bit of a weight flipped on disk
        save_trial_weights(folder, 0, PARENT, parent)
        flip_a_tensor_bit(path)
    else:
        folder.mkdir(parents=True)
        path.write_bytes(content)
    with pytest.raises(UserError, match=f"{path}: not trial #0's checkpoint of this search .*delete it, and its "
                                        "children train from scratch for search.epochs$") as caught:
        objective(1, SPACES["macro"].decode(CHILD), lambda *_: None, parent=0)
    assert ("holds trial #3's weights" in str(caught.value)) == (content == "another trial's")
    assert ("CRC-32" in str(caught.value)) == (content == "flipped")
    assert sorted(p.name for p in folder.iterdir()) == ["trial-0.pt"]  # nothing written for the child


def test_a_new_study_of_an_old_name_does_not_inherit_the_old_studys_weights(tmp_path, prepared_digits, mlflow_uri,
                                                                              monkeypatch):
    """The weights in checkpoints/inherit/<study> belong to the study of that name that wrote them: a search whose
    storage was deleted starts without them; a resumed one keeps them."""
    monkeypatch.chdir(tmp_path)
    raw = {"data": {"out": str(prepared_digits)},
           "search": {"space": "macro", "strategy": "regularized_evolution", "n_trials": 1, "epochs": 1, "channels": 2,
                      "batch_size": 512, "inherit": True, "child_epochs": 1, "study_name": "s",
                      "storage": f"sqlite:///{tmp_path / 'optuna.db'}"},
           "tracking": {"uri": mlflow_uri, "experiment": "inherit"}}
    search(Params.model_validate(raw), lambda _: None)
    folder = tmp_path / "checkpoints" / "inherit" / "s"
    assert sorted(p.name for p in folder.iterdir()) == ["trial-0.pt"]
    (folder / "trial-7.pt").write_bytes(b"another search's")
    raw["search"]["n_trials"] = 2
    search(Params.model_validate(raw), lambda _: None)  # resumed: its own weights stay
    assert sorted(p.name for p in folder.iterdir()) == ["trial-0.pt", "trial-1.pt", "trial-7.pt"]
    (tmp_path / "optuna.db").unlink()
    raw["search"]["n_trials"] = 1
    search(Params.model_validate(raw), lambda _: None)  # a new study of that name
    assert sorted(p.name for p in folder.iterdir()) == ["trial-0.pt"]
