"""Prefect flow of the ``search`` stage. A retried task resumes the same Optuna study, so a crash costs one trial.
The search's summary and its ten best trials are published as a table artifact."""

import optuna
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact

from flows.common import is_not_user_error, run_stage
from nas.config import load_params
from nas.reports import search_summary, top_trials
from nas.search import records
from nas.search.stage import search


@task(name="run-search", retries=1, retry_delay_seconds=5, retry_condition_fn=is_not_user_error)
def run_search_task(params_path: str) -> dict:
    return search(load_params(params_path), report=get_run_logger().info)


@task(name="publish-search-summary")
def publish_search_summary(params_path: str, found: dict) -> None:
    # The storage URL from params.yaml: search.json shows it without its password.
    study = optuna.load_study(study_name=found["study_name"], storage=load_params(params_path).search.storage)
    create_table_artifact(top_trials(records(study)), key="search-top-trials", description=search_summary(found))


@flow(name="search", log_prints=True)
def search_flow(params_path: str = "params.yaml") -> dict:
    found = run_search_task(params_path)
    publish_search_summary(params_path, found)
    return found


if __name__ == "__main__":
    run_stage(search_flow)
