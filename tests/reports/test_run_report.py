"""The run report (reports/report.md) says what the search found, apart from what was retrained, and what MLflow
holds for it."""

from nas.reports.run_report import write_report

MANIFEST = {"dataset": "digits", "num_classes": 10, "image_shape": [1, 8, 8], "split_seed": 0,
            "splits": {"train": {"shape": [1257]}, "val": {"shape": [270]}, "test": {"shape": [270]}}}
METRICS = {"test_accuracy": 0.95, "test_accuracy_ci95_low": 0.92, "test_accuracy_ci95_high": 0.97,
           "test_samples": 270, "n_params": 20_000, "flops": 1_000_000, "model_size_mb": 0.1,
           "cpu_latency_ms_batch1": 1.0, "cpu_latency_ms_batch256": 9.0, "export_format": "onnx",
           "export_max_abs_diff": 1e-6, "export_parity": True}
MLFLOW = {"experiment_id": "1", "parent_run_id": "abc", "tracking_uri": "sqlite:///mlflow.db"}


def _report(tmp_path, found, retrained):
    retrained = {"mlflow": {"run_id": "r", "registered_model": "m", "version": 1}, **retrained}
    path = write_report(tmp_path / "report.md", manifest=MANIFEST, found={"mlflow": MLFLOW, **found},
                        retrained=retrained, metrics=METRICS, top=[], champion="1", generations=None)
    return path.read_text()


def test_the_search_best_and_the_retrained_front_member_are_reported_apart(tmp_path):
    objectives = {"val_accuracy": "maximize", "params_m": "minimize"}
    front = [{"number": 5, "arch": "small", "values": {"val_accuracy": 0.10, "params_m": 0.020}},
             {"number": 6, "arch": "big", "values": {"val_accuracy": 0.97, "params_m": 0.023}}]
    found = {"strategy": "mo_re", "space": "nb201", "study_name": "s", "storage": "sqlite:///optuna.db",
             "n_trials": 5, "pruned": 7, "best": {**front[1], "val_accuracy": 0.97}, "objectives": objectives,
             "front": front, "hypervolume": 0.02, "reference_point": {"val_accuracy": 0.0, "params_m": 0.03}}
    text = _report(tmp_path, found, {"arch": "small", "trial_number": 5, "select": "under:params_m=0.021"})
    assert "best validation accuracy during the search: **0.9700** (trial 6)" in text
    assert "retrained: trial 5 (`retrain.select: under:params_m=0.021`)" in text
    assert "budget used: 5 completed trials, 7 pruned" in text
    assert "(one child run per trial)" in text


def test_a_one_shot_search_has_its_epochs_on_the_search_run_not_child_runs(tmp_path):
    found = {"strategy": "darts", "space": "nb201", "study_name": "s", "storage": "sqlite:///optuna.db",
             "n_trials": 2, "pruned": 0, "best": {"number": 1, "arch": "a", "val_accuracy": 0.5},
             "objectives": {"val_accuracy": "maximize"}, "front": [],
             "oneshot": {"epochs": 2, "derived": [{"epoch": 1, "arch": "a", "val_accuracy": 0.4},
                                                  {"epoch": 2, "arch": "a", "val_accuracy": 0.5}]}}
    text = _report(tmp_path, found, {"arch": "a", "trial_number": 1, "select": "best"})
    assert "search run `abc` (each supernet epoch as its metrics and artifacts)" in text
    assert "child run" not in text and "budget used: 2 completed trials\n" in text


def test_an_nb201_architecture_in_the_pareto_table_keeps_the_table_s_columns(tmp_path):
    arch = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"
    objectives = {"val_accuracy": "maximize", "params_m": "minimize"}
    front = [{"number": 1, "arch": arch, "values": {"val_accuracy": 0.9, "params_m": 0.02}}]
    found = {"strategy": "mo_re", "space": "nb201", "study_name": "s", "storage": "sqlite:///optuna.db",
             "n_trials": 1, "best": {**front[0], "val_accuracy": 0.9}, "objectives": objectives, "front": front,
             "hypervolume": 0.01, "reference_point": {"val_accuracy": 0.0, "params_m": 0.03}}
    text = _report(tmp_path, found, {"arch": arch, "trial_number": 1, "select": "best"})
    header = text.index("| trial | val_accuracy | params_m | arch |")
    row = text[header:].splitlines()[2]
    assert row.startswith("| 1 | 0.9 | 0.02 | `") and row.replace("\\|", "").count("|") == 5  # 4 cells, not 14
