"""The retrain run and the registry on a real SQLite store: a registered model carries its metadata and lineage,
loads back, and ``@champion`` moves only to a better model on the same test images."""

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from nas.errors import UserError
from nas.tracking import RetrainRun, SearchTracker, load_model, promote_champion, register_model


def test_champion_moves_only_to_a_better_model_on_the_same_test_images(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    experiment_id = client.create_experiment("models")
    models = [torch.nn.Linear(2, 2) for _ in range(6)]
    example = np.zeros((2, 2), dtype=np.float32)  # batch > 1: dynamic batch
    v1, v2, v3, v5, v6, v4 = (register_model(mlflow_uri, client.create_run(experiment_id).info.run_id, model, example,
                                             {}, "m").version for model in models)
    assert promote_champion(mlflow_uri, "m", v1, "digits", 0.95, "split-a") == v1  # no champion yet
    assert promote_champion(mlflow_uri, "m", v2, "digits", 0.94, "split-a") == v1  # worse: stays
    assert promote_champion(mlflow_uri, "m", v6, "digits", 0.95, "split-a") == v1  # a tie does not beat it: stays
    assert promote_champion(mlflow_uri, "m", v3, "mnist5k", 0.99, "split-m") == v1  # another dataset: not comparable
    # The same dataset split with another seed: other (here easier) test images, not comparable either
    assert promote_champion(mlflow_uri, "m", v5, "digits", 0.99, "split-b") == v1
    assert client.get_model_version("m", v5).tags["test_split_sha256"] == "split-b"
    assert promote_champion(mlflow_uri, "m", v4, "digits", 0.97, "split-a") == v4  # better: moves
    assert str(client.get_model_version_by_alias("m", "champion").version) == v4
    loaded, _ = load_model("models:/m@champion", mlflow_uri)
    x = torch.randn(3, 2)
    assert torch.allclose(loaded(x), models[5](x))


def test_retrain_run_under_the_search_registers_a_model_with_metadata_and_lineage(mlflow_uri):
    search = SearchTracker.start(mlflow_uri, "exp", "s", {}, {})
    run = RetrainRun.start(mlflow_uri, "exp", search.experiment_id, search.parent_run_id, tags={"optuna_study": "s"},
                           params={"epochs": 3})
    run.log_resumed({"val_accuracy": [0.5, 0.6]}, 2)  # two epochs restored from a checkpoint
    run.on_epoch_end(2, {"val_accuracy": 0.7})
    model = torch.nn.Linear(2, 3)
    version = run.register_model(model, np.zeros((2, 2), dtype=np.float32), {"nas_preprocessing": {"a": 1}}, "net",
                                 tags={"arch": "x"})
    run.finish({"n_params": 9})

    client = MlflowClient(mlflow_uri)
    got = client.get_run(run.run_id)
    assert got.info.status == "FINISHED" and got.data.tags["mlflow.parentRunId"] == search.parent_run_id
    assert got.data.params == {"epochs": "3"} and got.data.tags["resumed_from_epoch"] == "2"
    assert [(m.step, m.value) for m in client.get_metric_history(run.run_id, "val_accuracy")] == [
        (1, 0.5), (2, 0.6), (3, 0.7)]
    assert client.get_model_version("net", version.version).tags == {"arch": "x"}
    loaded, metadata = load_model(f"models:/net/{version.version}", mlflow_uri)
    assert metadata == {"nas_preprocessing": {"a": 1}} and torch.equal(loaded.weight, model.weight)


def test_a_failed_retrain_run_says_why(mlflow_uri):
    search = SearchTracker.start(mlflow_uri, "exp", "s", {}, {})
    run = RetrainRun.start(mlflow_uri, "exp", search.experiment_id, search.parent_run_id, tags={}, params={})
    run.fail("training diverged at epoch 1 (train_loss nan)")
    got = MlflowClient(mlflow_uri).get_run(run.run_id)
    assert got.info.status == "FAILED"
    assert got.data.tags["fail_reason"] == "training diverged at epoch 1 (train_loss nan)"


def test_a_model_that_is_not_there_is_a_user_error(mlflow_uri):
    with pytest.raises(UserError, match=r"^--model models:/nothing/1: cannot load it \("):
        load_model("models:/nothing/1", mlflow_uri)


def test_a_champion_registered_before_the_test_split_was_recorded_is_compared_by_its_dataset(mlflow_uri):
    client = MlflowClient(mlflow_uri)
    experiment_id = client.create_experiment("models")
    v1, v2 = (register_model(mlflow_uri, client.create_run(experiment_id).info.run_id, torch.nn.Linear(2, 2),
                             np.zeros((2, 2), dtype=np.float32), {}, "m").version for _ in range(2))
    assert promote_champion(mlflow_uri, "m", v1, "digits", 0.95) == v1  # as an older evaluate recorded it
    assert promote_champion(mlflow_uri, "m", v2, "digits", 0.96, "split-a") == v2
