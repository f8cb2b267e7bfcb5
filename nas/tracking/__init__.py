"""Experiment tracking (MLflow). Only the stage functions import this; strategies and the training loop do not."""

from nas.tracking.mlflow_tracking import (
    FAIL_REASON_TAG,
    WORKER_TAG,
    SearchTracker,
    TrialRun,
    close_stale_runs,
    git_commit,
    log_bench,
    open_tracking,
    tracking_uri,
)

__all__ = ["FAIL_REASON_TAG", "WORKER_TAG", "SearchTracker", "TrialRun", "close_stale_runs", "git_commit", "log_bench",
           "open_tracking", "tracking_uri"]
