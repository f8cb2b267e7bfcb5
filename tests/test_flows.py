"""The Prefect pipeline flow in-process against Prefect's test harness: stages chained as subflows."""

import asyncio
import json

import numpy as np
import onnxruntime
import pytest
import torch
import yaml
from prefect.client.orchestration import get_client

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
    metrics = pipeline("params.yaml")
    assert metrics == json.loads((tmp_path / "reports" / "metrics.json").read_text())
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
    assert (tmp_path / "reports" / "confusion_matrix.png").is_file()

    async def flow_names():
        async with get_client() as client:
            runs = await client.read_flow_runs()
            flows = {f.id: f.name for f in await client.read_flows()}
            return [(flows[r.flow_id], r.parent_task_run_id is not None, r.state_name) for r in runs]

    runs = asyncio.run(flow_names())
    for name in ("prepare", "search", "retrain", "evaluate"):
        assert (name, True, "Completed") in runs  # each stage ran as a subflow
    assert ("nas-pipeline", False, "Completed") in runs


def test_bench_flow(tmp_path, prefect_api_url, mlflow_uri):
    from flows.bench import bench_flow

    out = bench_flow("random,re", runs=2, budget_s=1500, out=str(tmp_path / "bench"), uri=mlflow_uri)
    assert [row["strategy"] for row in out["summary"]] == ["random", "regularized_evolution"]
    assert out["mlflow_run_id"] and (tmp_path / "bench" / "anytime.png").is_file()
