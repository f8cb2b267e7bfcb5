"""Prefect flow of the ``evaluate`` stage: test metrics, plots, MLflow logging."""

from prefect import flow, task

from flows.common import is_not_user_error, run_stage
from nas.config import load_params
from nas.evaluation import evaluate


@task(name="evaluate-model", retry_condition_fn=is_not_user_error)
def evaluate_task(params_path: str) -> dict:
    return evaluate(load_params(params_path))


@flow(name="evaluate", log_prints=True)
def evaluate_flow(params_path: str = "params.yaml") -> dict:
    return evaluate_task(params_path)


if __name__ == "__main__":
    run_stage(evaluate_flow)
