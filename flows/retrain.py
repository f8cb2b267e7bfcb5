"""Prefect flow of the ``retrain`` stage: train the best architecture at full size and register it."""

from prefect import flow, get_run_logger, task

from flows.common import is_not_user_error, run_stage
from nas.config import load_params
from nas.training.retrain import retrain


@task(name="retrain-best", retries=1, retry_delay_seconds=5, retry_condition_fn=is_not_user_error)
def retrain_task(params_path: str) -> dict:
    return retrain(load_params(params_path), report=get_run_logger().info)


@flow(name="retrain", log_prints=True)
def retrain_flow(params_path: str = "params.yaml") -> dict:
    return retrain_task(params_path)


if __name__ == "__main__":
    run_stage(retrain_flow)
