"""Experiment tracking and the model registry (MLflow): the only package that imports MLflow. Stages hand its
objects' ``on_epoch_end`` to the training loop as callbacks; strategies and the loop do not know it."""

from nas.tracking.mlflow_tracking import (
    EXPERIMENT_KIND_TAG,
    FAIL_REASON_TAG,
    TRAINING_KIND,
    WORKER_TAG,
    SearchTracker,
    TrialRun,
    close_stale_runs,
    flush_trackers,
    git_commit,
    log_bench,
    log_results,
    open_tracking,
    refused_by_store,
    tracking_uri,
    ui_link,
)
from nas.tracking.registry import (
    CHAMPION,
    ModelVersion,
    RetrainRun,
    check_registered,
    load_model,
    promote_champion,
    register_model,
)

__all__ = ["CHAMPION", "EXPERIMENT_KIND_TAG", "FAIL_REASON_TAG", "TRAINING_KIND", "WORKER_TAG", "ModelVersion",
           "RetrainRun", "SearchTracker", "TrialRun", "check_registered", "close_stale_runs", "flush_trackers",
           "git_commit", "load_model", "log_bench", "log_results", "open_tracking", "promote_champion",
           "refused_by_store", "register_model", "tracking_uri", "ui_link"]
