"""Prefect flow of the ``evaluate`` stage: test metrics, plots, MLflow logging; ``reports/report.md`` is published
as a markdown artifact."""

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.common import is_not_user_error, run_stage
from nas.config import load_params
from nas.evaluation import evaluate
from nas.evaluation.evaluate import REPORT_MD
from nas.reports import without_images


@task(name="evaluate-model", retry_condition_fn=is_not_user_error)
def evaluate_task(params_path: str) -> dict:
    return evaluate(load_params(params_path), report=get_run_logger().info)


@task(name="publish-report")
def publish_report() -> None:
    create_markdown_artifact(without_images(REPORT_MD.read_text()), key="nas-report",
                             description=f"{REPORT_MD}; its plots are next to it")


@flow(name="evaluate", log_prints=True)
def evaluate_flow(params_path: str = "params.yaml") -> dict:
    metrics = evaluate_task(params_path)
    publish_report()
    return metrics


if __name__ == "__main__":
    run_stage(evaluate_flow)
