"""Stage ``evaluate``: test accuracy with its 95% confidence interval, per-class accuracy and confusion matrix,
parameters, FLOPs, latency at batch 1 and 256 (CPU, and GPU when present) and size on disk of the retrained model;
then the champion rule: the registered version becomes ``@champion`` only when it beats the current champion's test
accuracy on the same dataset.

Writes ``reports/metrics.json`` (the headline numbers: DVC metrics), ``reports/details.json`` (everything else
measured), ``reports/best_arch.png``, ``reports/confusion_matrix.png``, ``reports/report.md`` and, from the search's
trial log, ``reports/trials.csv``, ``reports/search_progress.csv`` and their plots ``reports/trials.png`` and
``reports/search_progress.png``; logs them to the retrain and search runs in MLflow.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from scipy.stats import binomtest  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from nas.config import Params  # noqa: E402
from nas.data import load_prepared, normalize  # noqa: E402
from nas.errors import UserError, check_writable, first_line  # noqa: E402
from nas.estimation.cost import count_params  # noqa: E402
from nas.reports import architecture_plot, top_trials, write_search_reports  # noqa: E402
from nas.reports.run_report import write_report  # noqa: E402
from nas.reports.search_report import SEARCH_KIND_PLOTS  # noqa: E402
from nas.search import records  # noqa: E402
from nas.serving.export import export  # noqa: E402
from nas.spaces import SPACES  # noqa: E402
from nas.stores import OPTUNA_TABLES, redact, sqlite_path, sqlite_tables  # noqa: E402
from nas.tracking import CHAMPION, check_registered, log_results, promote_champion, tracking_uri  # noqa: E402
from nas.training import pick_device, predict  # noqa: E402
from nas.training.retrain import BEST_PT, RETRAIN_JSON, load_checkpoint, read_output  # noqa: E402

METRICS_JSON = Path("reports/metrics.json")
DETAILS_JSON = Path("reports/details.json")
EXPORT_DIR = Path("models/export")
REPORT_MD = Path("reports/report.md")
# What ``dvc metrics show`` shows: a few numbers that fit one line; the rest goes to DETAILS_JSON.
HEADLINE = ("test_accuracy", "test_accuracy_ci95_low", "test_accuracy_ci95_high", "n_params", "flops",
            "cpu_latency_ms_batch1")


def count_flops(model: torch.nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass on ``example`` (a multiply-add counts as 2), by ``torch.utils.flop_counter``."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    return int(counter.get_total_flops())


@torch.inference_mode()
def latency_ms(model: torch.nn.Module, batch: torch.Tensor, device: str = "cpu", repeats: int = 20) -> float:
    """Median wall time of one forward pass of ``batch`` on ``device``, after warm-up."""
    model, batch = model.to(device).eval(), batch.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(3):
        model(batch)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        model(batch)
        sync()
        times.append(time.perf_counter() - start)
    model.cpu()
    return 1000 * statistics.median(times)


def accuracy_interval(correct: int, total: int) -> tuple[float, float]:
    """Wilson 95% interval of an accuracy of ``correct`` out of ``total`` (scipy)."""
    interval = binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    return round(float(interval.low), 4), round(float(interval.high), 4)


def confusion_plot(y: torch.Tensor, pred: torch.Tensor, classes: list[str], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(1 + 0.6 * len(classes), 1 + 0.55 * len(classes)))
    ConfusionMatrixDisplay.from_predictions(y.numpy(), pred.numpy(), labels=list(range(len(classes))),
                                            display_labels=classes, ax=ax, colorbar=False, cmap="Blues")
    ax.set_title("test set: true class (rows) against predicted")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# What evaluate writes, or removes (an earlier search's plots, the other export format), by folder.
OUTPUTS = {METRICS_JSON.parent: (METRICS_JSON.name, DETAILS_JSON.name, REPORT_MD.name, "best_arch.png",
                                 "confusion_matrix.png", "trials.csv", "trials.png", "search_progress.csv",
                                 "search_progress.png", *sorted(SEARCH_KIND_PLOTS)),
           EXPORT_DIR: ("model.onnx", "model.onnx.data", "model.torchscript.pt")}
# What evaluate reads of the retrain stage's two outputs.
RECORDED = {RETRAIN_JSON: ("mlflow.registered_model", "mlflow.version", "mlflow.run_id"),
            BEST_PT: ("manifest.splits", "manifest.classes", "manifest.dataset", "search.study_name", "search.strategy",
                      "search.space", "search.n_trials", "search.storage", "search.best.number",
                      "search.best.val_accuracy", "search.best.arch", "search.mlflow.parent_run_id")}


def _first_missing(record: Any, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = record
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                return key
            value = value[part]
    return None


def _check_inputs(params: Params, retrained: dict[str, Any], ckpt: dict[str, Any], data: Any) -> optuna.Study:
    """Everything evaluate reads or writes, checked before it writes anything; returns the search's study."""
    for path, record in ((RETRAIN_JSON, retrained), (BEST_PT, ckpt)):
        if missing := _first_missing(record, RECORDED[path]):
            raise UserError(f"{path}: lacks {missing}, which the retrain stage writes; rerun it (dvc repro retrain)")
    trained_on, held = ckpt["manifest"]["splits"], data.manifest["splits"]
    if any(trained_on.get(name, {}).get("sha256") != held[name]["sha256"] for name in held):
        raise UserError(f"{BEST_PT}: trained on other splits than {params.data.out} holds (data.dataset, fractions or "
                        "seed changed since it was retrained): its test images may be ones it trained on; rerun "
                        "the search and retrain stages (dvc repro)")
    for folder, names in OUTPUTS.items():
        check_writable("the evaluate stage's outputs", folder, [folder / name for name in names])
    # The URLs come from params.yaml: the files earlier stages wrote show them without passwords.
    storage, name = params.search.storage, ckpt["search"]["study_name"]
    shown, path = f"search.storage {redact(storage)}", sqlite_path(storage)
    if path is not None and not Path(path).is_file():
        raise UserError(f"{shown}: no such database, so no study {name!r} to report; run the search stage "
                        "(dvc repro search)")
    if path is not None and not OPTUNA_TABLES <= (sqlite_tables(path) or set()):  # Optuna would add its tables
        raise UserError(f"{shown}: {path} is not an Optuna study store; name the one the search wrote")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise UserError(f"{shown}: holds no study {name!r}, which {BEST_PT} was searched in; run the search stage "
                        "(dvc repro search)") from None
    except RuntimeError as exc:  # a storage of another Optuna version's schema
        raise UserError(f"{shown}: {first_line(exc)}") from None
    registered = retrained["mlflow"]
    check_registered(tracking_uri(params.tracking.uri), registered["registered_model"], registered["version"],
                     str(RETRAIN_JSON))
    return study


def evaluate(params: Params, report: Callable[[str], None] = print) -> dict[str, Any]:
    retrained = read_output(RETRAIN_JSON, "retrain")  # every input read and checked before anything is written
    model, ckpt = load_checkpoint(BEST_PT)
    data = load_prepared(params.data.out, params.data)
    study = _check_inputs(params, retrained, ckpt, data)
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
    batch = x[torch.arange(256) % len(x)]
    low, high = accuracy_interval(int(correct.sum()), len(y))
    metrics = {
        "test_accuracy": round(correct.float().mean().item(), 4),
        "test_accuracy_ci95_low": low,
        "test_accuracy_ci95_high": high,
        "test_samples": len(y),
        "per_class_accuracy": per_class,
        "n_params": count_params(model),  # the deployed network: DARTS's auxiliary head is not counted
        "flops": count_flops(model, example),
        "cpu_latency_ms_batch1": round(latency_ms(model, example), 3),
        "cpu_latency_ms_batch256": round(latency_ms(model, batch, repeats=5), 3),
        "arch": ckpt["arch"],
        "dataset": ckpt["manifest"]["dataset"],
    }
    exported = export(model, x[:256], EXPORT_DIR)
    metrics |= {"model_size_mb": round(Path(exported["path"]).stat().st_size / 2**20, 3),  # what is deployed
                "export_format": exported["format"], "export_max_abs_diff": exported["max_abs_diff"],
                "export_parity": exported["parity"]}
    if not exported["parity"]:
        report(f"[evaluate] warning: {exported['path']} differs from PyTorch by up to {exported['max_abs_diff']:.2e}")
    device = pick_device()
    if device != "cpu":
        metrics[f"{device}_latency_ms_batch1"] = round(latency_ms(model, example, device), 3)
        metrics[f"{device}_latency_ms_batch256"] = round(latency_ms(model, batch, device), 3)
    folder = METRICS_JSON.parent
    folder.mkdir(parents=True, exist_ok=True)
    METRICS_JSON.write_text(json.dumps({k: metrics[k] for k in HEADLINE}, indent=2) + "\n")
    DETAILS_JSON.write_text(json.dumps({k: v for k, v in metrics.items() if k not in HEADLINE}, indent=2) + "\n")
    space = SPACES[ckpt["space"]]
    cell_png = architecture_plot(space.decode(ckpt["arch"]), folder / "best_arch.png")
    confusion_png = confusion_plot(y, pred, classes, folder / "confusion_matrix.png")
    found = ckpt["search"]
    trials = records(study)
    search_files = write_search_reports(
        study, trials, f"{found['strategy']} on {found['space']} / {metrics['dataset']}", folder,
        selected=retrained.get("trial_number"), reference=found.get("reference_point"),
    )

    registered = retrained["mlflow"]
    uri = tracking_uri(params.tracking.uri)
    champion = promote_champion(uri, registered["registered_model"], registered["version"], metrics["dataset"],
                                metrics["test_accuracy"], ckpt["manifest"]["splits"]["test"]["sha256"])
    report_md = write_report(REPORT_MD, manifest=ckpt["manifest"], found=found, retrained=retrained, metrics=metrics,
                             top=top_trials(trials), champion=champion,
                             generations=found.get("generations"))
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    scalars |= {f"test_accuracy_class_{k}": v for k, v in per_class.items() if v is not None}
    both = [METRICS_JSON, DETAILS_JSON, cell_png, confusion_png, report_md]
    log_results(uri, registered["run_id"], scalars, both)
    log_results(uri, registered["run_id"], artifacts=[exported["path"]], folder="export")
    log_results(uri, found["mlflow"]["parent_run_id"], scalars, [*both, *search_files])
    report(f"[evaluate] test_acc={metrics['test_accuracy']:.4f} (95% CI {low:.4f}-{high:.4f}) on {len(y)} images, "
           f"{metrics['n_params']:,} params, {metrics['flops']:,} FLOPs, {metrics['cpu_latency_ms_batch1']:.2f} ms "
           f"at batch 1 on CPU; {registered['registered_model']}@{CHAMPION} is version {champion}")
    return metrics
