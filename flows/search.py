"""Prefect flow of the ``search`` stage. A retried task resumes the same Optuna study, so a crash costs one trial."""

from prefect import flow, task

from flows.common import is_not_user_error, run_stage
from nas.config import load_params
from nas.search.stage import search


@task(name="run-search", retries=1, retry_delay_seconds=5, retry_condition_fn=is_not_user_error)
def run_search_task(params_path: str) -> dict:
    return search(load_params(params_path))


@flow(name="search", log_prints=True)
def search_flow(params_path: str = "params.yaml") -> dict:
    return run_search_task(params_path)


if __name__ == "__main__":
    run_stage(search_flow)
