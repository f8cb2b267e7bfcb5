"""The retrain run and the model registry: one run per retrain, a child of the search's run, that logs the retrained
network and registers it; the ``@champion`` alias; loading a registered model back.

Example::

    run = RetrainRun.start(uri, "nas", experiment_id, search_run_id, tags={}, params={"epochs": 30})
    history = train(model, data, config, [run.on_epoch_end])
    version = run.register_model(model, example, {"nas_preprocessing": ...}, "nas-digits", tags={})
    run.finish({"train_seconds": history["seconds"]})
    promote_champion(uri, version.name, version.version, "digits", test_accuracy)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mlflow
import mlflow.pytorch
import numpy as np
import torch
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from sqlalchemy.exc import SQLAlchemyError

from nas.errors import UserError, first_line
from nas.stores import check_store, reason, redact
from nas.tracking.mlflow_tracking import (
    FAIL_REASON_TAG,
    ROLE_TAG,
    TRACKING_ERRORS,
    close_stale_runs,
    git_commit,
    open_tracking,
    run_tags,
)

TEST_SPLIT_TAG = "test_split_sha256"  # on each registered version: the test images its accuracy was measured on
CHAMPION = "champion"


@dataclass(frozen=True)
class ModelVersion:
    """A registered model version and the URI of the logged model behind it."""

    name: str
    version: str
    model_uri: str


def _metrics(values: dict[str, float], step: int = 0) -> list[Metric]:
    stamp = int(time.time() * 1000)
    return [Metric(k, float(v), stamp, step) for k, v in values.items()]


class RetrainRun:
    """The retrain stage's run. ``on_epoch_end`` is a training-loop callback; each epoch is written at once (an epoch
    of a full-size network takes seconds to minutes, a write milliseconds)."""

    def __init__(self, client: MlflowClient, uri: str, run_id: str) -> None:
        self.client, self.uri, self.run_id = client, uri, run_id

    @classmethod
    def start(cls, uri: str, experiment: str, experiment_id: str, parent_run_id: str, tags: dict[str, str],
              params: dict[str, Any]) -> RetrainRun:
        """A new run in ``experiment_id`` under the search run ``parent_run_id``; runs that a dead process left
        RUNNING are closed first. ``experiment`` (params.yaml's) is opened to check the store."""
        client, _ = open_tracking(uri, experiment)
        close_stale_runs(client, experiment_id)
        run = client.create_run(experiment_id, run_name="retrain", tags={
            MLFLOW_PARENT_RUN_ID: parent_run_id, ROLE_TAG: "retrain", **run_tags(git_commit()), **tags})
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return cls(client, uri, run.info.run_id)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """The metrics after ``epoch`` (0-based), at step ``epoch + 1``: the epochs trained."""
        self.client.log_batch(self.run_id, metrics=_metrics(metrics, epoch + 1))

    def log_resumed(self, curves: dict[str, Sequence[float]], epochs: int) -> None:
        """The first ``epochs`` points of each curve, trained before an interruption and restored from the
        checkpoint: the run shows the whole curve."""
        if not epochs:
            return
        self.client.log_batch(self.run_id, metrics=[m for e in range(epochs)
                                                    for m in _metrics({k: v[e] for k, v in curves.items()}, e + 1)])
        self.client.set_tag(self.run_id, "resumed_from_epoch", str(epochs))

    def register_model(self, model: torch.nn.Module, input_example: np.ndarray, metadata: dict[str, Any], name: str,
                       tags: dict[str, str]) -> ModelVersion:
        """Log ``model`` to this run and register it as ``name`` with ``tags`` (its lineage) on the new version."""
        return register_model(self.uri, self.run_id, model, input_example, metadata, name, tags)

    def finish(self, metrics: dict[str, float]) -> None:
        self.client.log_batch(self.run_id, metrics=_metrics(metrics))
        self.client.set_terminated(self.run_id, status="FINISHED")

    def fail(self, reason: str = "") -> None:
        """Close the run as FAILED; ``reason`` becomes its ``fail_reason`` tag."""
        if reason:
            self.client.set_tag(self.run_id, FAIL_REASON_TAG, reason)
        self.client.set_terminated(self.run_id, status="FAILED")


def register_model(uri: str, run_id: str, model: torch.nn.Module, input_example: np.ndarray,
                   metadata: dict[str, Any], name: str, tags: dict[str, str] | None = None) -> ModelVersion:
    """Log ``model`` to the run ``run_id`` of the store ``uri`` and register it as ``name``.

    ``input_example`` is what the network takes (a batch of at least two: the graph is exported with a dynamic
    batch); ``metadata`` is stored with the model (``mlflow.models.get_model_info(uri).metadata``).
    """
    mlflow.set_tracking_uri(uri)  # mlflow.pytorch logs to the active run of the global store only
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pytorch.log_model(model, name="model", registered_model_name=name, input_example=input_example,
                                        metadata=metadata)
    version = ModelVersion(name, str(info.registered_model_version), info.model_uri)
    client = MlflowClient(tracking_uri=uri)
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version.version, key, value)
    return version


def check_registered(uri: str, name: str, version: str, recorded_in: str) -> None:
    """UserError unless version ``version`` of ``name`` (as ``recorded_in`` names it) is in the MLflow store at
    ``uri``; a local store that is not there is not created."""
    shown = f"tracking.uri {redact(uri)}"
    hint = f"rerun the retrain stage, which registers the model and writes {recorded_in} (dvc repro retrain)"
    check_store(uri, shown, hint)
    try:
        MlflowClient(tracking_uri=uri).get_model_version(name, str(version))
    except TRACKING_ERRORS as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            raise UserError(f"{shown}: holds no version {version} of model {name!r}, which {recorded_in} "
                            f"names; {hint}") from None
        raise UserError(f"{shown}: the store failed while reading the model registry ({reason(exc, uri)}); run "
                        "the stage again once it answers") from None


def promote_champion(uri: str, name: str, version: str, dataset: str, accuracy: float, test_split: str = "") -> str:
    """Record ``accuracy``, ``dataset`` and ``test_split`` (the test split's SHA-256) on version ``version`` of
    ``name``, and move ``@champion`` to it when no champion exists or the champion, measured on the same test images,
    has a lower test accuracy. Returns the version that is champion afterwards.

    Accuracies on different test images are not comparable (another data seed or test fraction draws another test
    split of the same dataset), so a champion measured on others stays; one registered before the split was recorded
    is compared by its dataset alone."""
    client = MlflowClient(tracking_uri=uri)
    client.set_model_version_tag(name, version, "test_accuracy", str(accuracy))
    client.set_model_version_tag(name, version, "dataset", dataset)
    if test_split:
        client.set_model_version_tag(name, version, TEST_SPLIT_TAG, test_split)
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is not None:
        theirs = champion.tags.get(TEST_SPLIT_TAG)
        comparable = champion.tags.get("dataset") == dataset and (theirs is None or theirs == test_split)
        if not comparable or float(champion.tags.get("test_accuracy", "nan")) >= accuracy:
            return str(champion.version)  # a champion measured on other test images is not comparable: it stays
    client.set_registered_model_alias(name, CHAMPION, version)
    return str(version)


def load_model(model_uri: str, tracking_uri: str | None = None, key: str = "--model") -> tuple[torch.nn.Module,
                                                                                                  dict[str, Any]]:
    """The network logged at ``model_uri`` (``models:/<name>@champion``, ``models:/<name>/3``, ``runs:/<id>/model``)
    on the CPU, and the metadata stored with it; one it cannot load is a UserError naming ``key``."""
    if tracking_uri is not None:
        mlflow.set_tracking_uri(tracking_uri)
    try:
        info = mlflow.models.get_model_info(model_uri)
        model = mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except (MlflowException, OSError, SQLAlchemyError, sqlite3.Error) as exc:  # the store's own errors too
        raise UserError(f"{key} {model_uri}: cannot load it ({first_line(exc)})") from None
    return model, info.metadata or {}
