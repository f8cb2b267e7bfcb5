import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.image import imread

from nas.errors import UserError, check_writable
from nas.evaluation import count_flops, latency_ms
from nas.evaluation.evaluate import accuracy_interval, confusion_plot
from nas.reports import cell_plot, top_trials, without_images, write_search_reports
from nas.search import records
from nas.spaces.nb201 import decode
from nas.training import pick_device


def test_flops_are_counted_by_torch_for_a_known_layer():
    layer = torch.nn.Linear(10, 4, bias=False)
    assert count_flops(layer, torch.randn(3, 10)) == 2 * 3 * 10 * 4


class Sleeper(torch.nn.Module):
    """A forward pass of a known duration: 5 ms, but every fourth 100 ms, outliers that only a median ignores."""

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(0.1 if self.calls % 4 == 0 else 0.005)
        return x


def test_latency_is_the_median_forward_time_in_ms_and_model_left_on_cpu():
    assert 5 <= latency_ms(Sleeper(), torch.zeros(1), repeats=5) < 15  # the mean would be at least 24
    model = torch.nn.Linear(10, 4)
    latency_ms(model, torch.randn(256, 10), pick_device(), repeats=2)
    assert next(model.parameters()).device.type == "cpu"


def test_accuracy_interval_is_wilsons():
    low, high = accuracy_interval(268, 270)
    assert low == pytest.approx(0.9734, abs=1e-4) and high == pytest.approx(0.9980, abs=1e-4)
    assert accuracy_interval(0, 10)[0] == 0.0


def _pixels(path):
    image = imread(path)
    assert (image[..., :3] < 0.9).mean() > 0.01, f"{path.name} is blank"  # some ink on the white background
    return image


def test_confusion_matrix_plot(tmp_path):
    y = torch.tensor([0, 1, 2, 2])
    right = _pixels(confusion_plot(y, y, ["a", "b", "c"], tmp_path / "right.png"))
    wrong = _pixels(confusion_plot(y, torch.tensor([0, 2, 2, 1]), ["a", "b", "c"], tmp_path / "wrong.png"))
    assert right.shape == wrong.shape and not np.array_equal(right, wrong)


def test_cell_drawing_is_a_png(tmp_path):
    convs = _pixels(cell_plot(decode("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"),
                              tmp_path / "convs.png"))
    skips = _pixels(cell_plot(decode("|skip_connect~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"),
                              tmp_path / "skips.png"))
    assert convs.shape == skips.shape and not np.array_equal(convs, skips)


def test_darts_genotype_drawing_shows_both_cells(tmp_path):
    from nas.reports.plots import architecture_plot
    from nas.spaces.darts import DARTS_V1, DARTS_V2

    v1, v2 = (_pixels(architecture_plot(g, tmp_path / f"{n}.png")) for n, g in (("v1", DARTS_V1), ("v2", DARTS_V2)))
    assert v1.shape == v2.shape and not np.array_equal(v1, v2)


def test_search_reports_from_the_study(tmp_path):
    study = optuna.create_study(direction="maximize")
    for number, (accuracy, seconds) in enumerate([(0.5, 1.0), (0.7, 3.0), (0.6, 2.0)]):
        study.add_trial(optuna.trial.create_trial(value=accuracy,
                                                  user_attrs={"arch": f"a{number}", "seconds": seconds}))
    style = dict(plt.rcParams)
    for stale in ("pareto_front.png", "hypervolume.png", "alphas.png"):  # an earlier multi-objective or one-shot run's
        (tmp_path / stale).write_bytes(b"png")
    files = write_search_reports(study, records(study), "random on nb201 / digits", tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["search_progress.png", "trials.png"]
    assert dict(plt.rcParams) == style  # Optuna's plot switches to the ggplot style: it must not stay for later plots
    assert [f.name for f in files] == ["trials.csv", "search_progress.csv", "search_progress.png", "trials.png"]
    assert pd.read_csv(tmp_path / "search_progress.csv")["best_val_accuracy"].tolist() == [0.5, 0.7, 0.7]
    progress, trials = _pixels(tmp_path / "search_progress.png"), _pixels(tmp_path / "trials.png")
    assert progress.shape == trials.shape and not np.array_equal(progress, trials)
    assert [row["trial"] for row in top_trials(records(study), k=2)] == [1, 2]


def test_the_progress_plot_draws_the_best_so_far_of_a_multi_objective_search(tmp_path):
    """Optuna's optimization history has no best line once given a target (a multi-objective study's accuracy)."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["val_accuracy", "params"])
    for number, values in enumerate([(0.5, 10.0), (0.7, 30.0), (0.6, 5.0)]):
        study.add_trial(optuna.trial.create_trial(values=values, user_attrs={"arch": f"a{number}", "seconds": 1.0}))
    write_search_reports(study, records(study), "mo", tmp_path)
    assert pd.read_csv(tmp_path / "search_progress.csv")["best_val_accuracy"].tolist() == [0.5, 0.7, 0.7]
    image = _pixels(tmp_path / "search_progress.png")[..., :3]
    line = np.abs(image - np.array(to_rgb("tab:red"))).sum(-1) < 0.15
    assert line.sum() > 200  # the best-so-far line, drawn in red


def test_the_report_artifact_names_its_plots_instead_of_linking_them():
    markdown = "# run\n\n![search progress](search_progress.png)\n\na [link](https://example.org)\n"
    expected = "# run\n\n*search progress: search_progress.png*\n\na [link](https://example.org)\n"
    assert without_images(markdown) == expected


def test_an_output_that_cannot_be_overwritten_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """What evaluate checks of reports/ and models/export/ first: the folder, then each file it would replace (a
    read-only or immutable file; simulated where root could write it anyway)."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "metrics.json").write_text("{}")
    locked = reports / "report.md"
    locked.write_text("")
    locked.chmod(0o444)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        False if Path(path) == locked and mode & os.W_OK else access(path, mode, **kw)))
    with pytest.raises(UserError, match=f"^outputs: {locked} is not writable; make it writable or remove it$"):
        check_writable("outputs", reports, reports.glob("*"))
    check_writable("outputs", reports, [reports / "metrics.json", reports / "new.png"])  # absent: written anew
    check_writable("outputs", tmp_path / "models" / "export")  # made under a writable folder
