"""Stage ``evaluate``: test accuracy, per-class accuracy, size, FLOPs and CPU latency of the retrained model.

Writes ``reports/metrics.json`` (DVC metrics), ``reports/best_arch.png`` and, from the search's trial log,
``reports/trials.csv``, ``reports/search_progress.csv`` and ``reports/search_progress.png``; logs them to MLflow.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from torch.utils.flop_counter import FlopCounterMode

from nas.config import Params
from nas.data import load_prepared, normalize
from nas.reports import architecture_plot, write_search_reports
from nas.search import records
from nas.spaces import SPACES
from nas.training import predict
from nas.training.retrain import BEST_PT, RETRAIN_JSON, load_checkpoint, read_output

METRICS_JSON = Path("reports/metrics.json")


def count_flops(model: torch.nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``example`` (a multiply-add counts as 2), by ``torch.utils.flop_counter``."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    return int(counter.get_total_flops())


@torch.inference_mode()
def cpu_latency_ms(model: torch.nn.Module, example: torch.Tensor, repeats: int = 50) -> float:
    """Median wall time of one forward pass at batch 1 on the CPU, after warm-up."""
    model = model.cpu().eval()
    for _ in range(5):
        model(example)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(example)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def evaluate(params: Params, report: Callable[[str], None] = print) -> dict[str, Any]:
    model, ckpt = load_checkpoint(BEST_PT)
    data = load_prepared(params.data.out)
    x = normalize(data.test.x, ckpt["manifest"])
    y = data.test.y
    pred = predict(model, x)
    correct = pred == y
    classes = ckpt["manifest"]["classes"]
    per_class = {
        name: round(correct[y == k].float().mean().item(), 4) if (y == k).any() else None
        for k, name in enumerate(classes)
    }
    example = x[:1]
    metrics = {
        "test_accuracy": round(correct.float().mean().item(), 4),
        "test_samples": len(y),
        "per_class_accuracy": per_class,
        "n_params": sum(p.numel() for p in model.parameters()),
        "flops": count_flops(model, example),
        "cpu_latency_ms_batch1": round(cpu_latency_ms(model, example), 3),
        "arch": ckpt["arch"],
        "dataset": ckpt["manifest"]["dataset"],
    }
    METRICS_JSON.parent.mkdir(parents=True, exist_ok=True)
    METRICS_JSON.write_text(json.dumps(metrics, indent=2) + "\n")
    space = SPACES[ckpt["space"]]
    cell_png = architecture_plot(space.decode(ckpt["arch"]), METRICS_JSON.parent / "best_arch.png")
    found = ckpt["search"]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=found["study_name"], storage=found["storage"])
    search_files = write_search_reports(
        records(study), f"{found['strategy']} on {found['space']} / {metrics['dataset']}", METRICS_JSON.parent
    )

    retrained = read_output(RETRAIN_JSON, "retrain")
    client = MlflowClient(tracking_uri=retrained["mlflow"]["tracking_uri"])
    stamp = int(time.time() * 1000)
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    scalars |= {f"test_accuracy_class_{k}": v for k, v in per_class.items() if v is not None}
    for run_id in (retrained["mlflow"]["run_id"], found["mlflow"]["parent_run_id"]):
        client.log_batch(run_id, metrics=[Metric(k, float(v), stamp, 0) for k, v in scalars.items()])
        for path in (METRICS_JSON, cell_png):
            client.log_artifact(run_id, str(path))
    for path in search_files:
        client.log_artifact(found["mlflow"]["parent_run_id"], str(path))
    report(f"[evaluate] test_acc={metrics['test_accuracy']:.4f} on {len(y)} images, {metrics['n_params']:,} params, "
           f"{metrics['flops']:,} FLOPs, {metrics['cpu_latency_ms_batch1']:.2f} ms/image on CPU")
    return metrics
