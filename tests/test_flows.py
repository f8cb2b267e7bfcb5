"""The Prefect pipeline flow in-process against Prefect's test harness: stages chained as subflows."""

import asyncio
import json

import numpy as np
import onnxruntime
import pytest
import torch
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, FlowRunFilter, LogFilter
from prefect.logging.handlers import APILogWorker

from nas.data import load_prepared, normalize
from nas.training.retrain import load_checkpoint
from tests.conftest import ROOT


@pytest.mark.parametrize("space,strategy", [("nb201", "random"), ("macro", "neat")])
def test_pipeline_flow_chains_the_stage_flows(space, strategy, tmp_path, prefect_api_url, mlflow_uri, monkeypatch):
    from flows.pipeline import pipeline

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["out"] = str(tmp_path / "prepared")
    params["search"].update(n_trials=3, epochs=1, channels=4, space=space, strategy=strategy, strategy_options={})
    params["retrain"].update(epochs=1, warmup_epochs=0, channels=4, cells_per_stage=1)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    pipeline_state = pipeline("params.yaml", return_state=True)
    metrics = pipeline_state.result()
    headline = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    details = json.loads((tmp_path / "reports" / "details.json").read_text())
    assert len(headline) <= 6 and "test_accuracy" in headline and "per_class_accuracy" in details
    assert metrics == headline | details
    found = json.loads((tmp_path / "models" / "search.json").read_text())
    assert found["space"] == space and found["strategy"] == strategy and found["n_trials"] == 3
    assert metrics["arch"] == found["best"]["arch"] and (tmp_path / "reports" / "best_arch.png").is_file()
    assert ("generations" in found) == (strategy == "neat")
    report = (tmp_path / "reports" / "report.md").read_text()
    assert f"{strategy} on {space}" in report and found["best"]["arch"] in report and "Top 10 trials" in report
    assert metrics["test_accuracy_ci95_low"] <= metrics["test_accuracy"] <= metrics["test_accuracy_ci95_high"]
    assert metrics["export_format"] == "onnx" and metrics["export_parity"]
    # parity checked here, not taken from the exporter's own report: ONNX Runtime against PyTorch on the test set
    model, ckpt = load_checkpoint(tmp_path / "models" / "best.pt")
    x = normalize(load_prepared(params["data"]["out"]).test.x, ckpt["manifest"])
    session = onnxruntime.InferenceSession(str(tmp_path / "models" / "export" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0], model(x).numpy(),
                                   rtol=1e-3, atol=1e-4)  # the README's tolerance: 1e-4 + 1e-3 |logit|
    for plot in ("confusion_matrix.png", "search_progress.png", "trials.png"):
        assert (tmp_path / "reports" / plot).is_file()

    async def flow_names():
        async with get_client() as client:
            runs = await client.read_flow_runs()
            flows = {f.id: f.name for f in await client.read_flows()}
            return [(flows[r.flow_id], r.parent_task_run_id is not None, r.state_name) for r in runs]

    async def published(pipeline_run_id):
        """The artifacts of the stage flows this pipeline run started, by key, and their log lines, by flow."""
        async with get_client() as client:
            children = await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [pipeline_run_id]}))
            flows = {f.id: f.name for f in await client.read_flows()}
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id={"any_": [r.id for r in children]}))
            logs = {flows[r.flow_id]: await client.read_logs(LogFilter(flow_run_id={"any_": [r.id]})) for r in children}
            return {a.key: a for a in found}, {name: [log.message for log in lines] for name, lines in logs.items()}

    runs = asyncio.run(flow_names())
    for name in ("prepare", "search", "retrain", "evaluate"):
        assert (name, True, "Completed") in runs  # each stage ran as a subflow
    assert ("nas-pipeline", False, "Completed") in runs
    APILogWorker.drain_all()  # logs are sent in the background
    artifacts, logs = asyncio.run(published(pipeline_state.state_details.flow_run_id))
    assert artifacts["nas-report"].type == "markdown" and "Top 10 trials" in artifacts["nas-report"].data
    table = json.loads(artifacts["search-top-trials"].data)
    assert len(table) == 3 and table[0]["trial"] == found["best"]["number"]
    assert found["study_name"] in artifacts["search-top-trials"].description
    # progress lines go to the Prefect run logger, so the UI shows them
    assert any(line.startswith("[retrain] epoch 1/1") for line in logs["retrain"])
    assert any(line.startswith("[evaluate] test_acc=") for line in logs["evaluate"])


def test_bench_flow(tmp_path, prefect_api_url, mlflow_uri):
    from flows.bench import bench_flow

    out = bench_flow("random,re", runs=2, budget_s=1500, out=str(tmp_path / "bench"), uri=mlflow_uri)
    assert [row["strategy"] for row in out["summary"]] == ["random", "regularized_evolution"]
    assert out["mlflow_run_id"] and (tmp_path / "bench" / "anytime.png").is_file()


def test_a_deployment_run_with_a_bad_params_file_fails_before_any_stage_in_one_line(tmp_path, prefect_api_url,
                                                                                  monkeypatch):
    """A deployment's run (``nas schedule``) starts the flow in a process of its own, not through ``run_stage``: the
    flow itself refuses a bad ``params_path`` before any stage starts, and the engine logs the error as one line,
    without the traceback it would print for a bug."""
    import logging

    from flows.pipeline import pipeline

    records: list[logging.LogRecord] = []
    collect = logging.Handler()
    collect.emit = records.append
    loggers = [logging.getLogger(n) for n in ("prefect.flow_runs", "prefect.flow_engine", "prefect.task_runs")]
    for logger in loggers:
        logger.addHandler(collect)
    monkeypatch.chdir(tmp_path)
    try:
        state = pipeline("nope.yaml", return_state=True)
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
    assert state.is_failed() and "nope.yaml: no such params file" in state.message

    async def subflows():
        async with get_client() as client:
            return await client.read_flow_runs(
                flow_run_filter=FlowRunFilter(parent_flow_run_id={"any_": [state.state_details.flow_run_id]}))

    assert asyncio.run(subflows()) == []  # prepare never started
    errors = [r for r in records if "no such params file" in r.getMessage()]
    assert errors and not any(r.exc_info or r.exc_text for r in records)
