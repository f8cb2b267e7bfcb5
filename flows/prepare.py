"""Prefect flow of the ``prepare`` stage: download (when needed), split and write the dataset."""

from prefect import flow, task

from flows.common import is_not_user_error, run_stage
from nas.config import load_params
from nas.data import prepare


@task(name="prepare-dataset", retries=2, retry_delay_seconds=10, retry_condition_fn=is_not_user_error)
def prepare_dataset(params_path: str) -> dict:
    return prepare(load_params(params_path).data)


@flow(name="prepare", log_prints=True)
def prepare_flow(params_path: str = "params.yaml") -> dict:
    return prepare_dataset(params_path)


if __name__ == "__main__":
    run_stage(prepare_flow)
