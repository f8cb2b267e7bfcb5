"""The whole pipeline as one Prefect flow, each stage a subflow: prepare -> search -> retrain -> evaluate.

``dvc repro`` runs the stages one by one (and skips those whose inputs did not change); this flow is for scheduled
runs and deployments: ``python -m flows.pipeline [params.yaml]``.
"""

from prefect import flow

from flows.common import hide_user_error_tracebacks, run_stage
from flows.evaluate import evaluate_flow
from flows.prepare import prepare_flow
from flows.retrain import retrain_flow
from flows.search import search_flow
from nas.config import load_params


@flow(name="nas-pipeline", log_prints=True)
def pipeline(params_path: str = "params.yaml") -> dict:
    hide_user_error_tracebacks()  # a deployment's run may start here, not in run_stage
    load_params(params_path)  # a bad params file (a deployment's parameter) fails the run before any stage starts
    prepare_flow(params_path)
    search_flow(params_path)
    retrain_flow(params_path)
    return evaluate_flow(params_path)


if __name__ == "__main__":
    run_stage(pipeline)
