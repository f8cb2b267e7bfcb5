"""Experiment tracking (MLflow). Only the stage functions import this; strategies and the training loop do not."""

from nas.tracking.mlflow_tracking import SearchTracker, TrialRun, git_commit, log_bench, tracking_uri

__all__ = ["SearchTracker", "TrialRun", "git_commit", "log_bench", "tracking_uri"]
