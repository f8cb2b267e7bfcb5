import time

import mlflow
import numpy as np
import pytest
import torch
from matplotlib.image import imread
from mlflow.tracking import MlflowClient

from nas.evaluation import count_flops, latency_ms
from nas.evaluation.evaluate import accuracy_interval, confusion_plot, promote_champion
from nas.reports import cell_plot
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


def test_champion_moves_only_to_a_better_model_on_the_same_dataset(mlflow_uri, tmp_path):
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient(mlflow_uri)
    versions, models = [], [torch.nn.Linear(2, 2) for _ in range(4)]
    for model in models:
        with mlflow.start_run():
            info = mlflow.pytorch.log_model(model, name="model", registered_model_name="m",
                                            input_example=torch.zeros(2, 2).numpy())  # batch > 1: dynamic batch
        versions.append(info.registered_model_version)
    v1, v2, v3, v4 = (str(v) for v in versions)
    assert promote_champion(client, "m", v1, "digits", 0.95) == v1  # no champion yet
    assert promote_champion(client, "m", v2, "digits", 0.94) == v1  # worse: stays
    assert promote_champion(client, "m", v3, "mnist5k", 0.99) == v1  # another dataset: not comparable
    assert promote_champion(client, "m", v4, "digits", 0.97) == v4  # better: moves
    assert str(client.get_model_version_by_alias("m", "champion").version) == v4
    loaded = mlflow.pytorch.load_model("models:/m@champion")
    x = torch.randn(3, 2)
    assert torch.allclose(loaded(x), models[3](x))


def test_cell_drawing_is_a_png(tmp_path):
    convs = _pixels(cell_plot(decode("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"),
                              tmp_path / "convs.png"))
    skips = _pixels(cell_plot(decode("|skip_connect~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"),
                              tmp_path / "skips.png"))
    assert convs.shape == skips.shape and not np.array_equal(convs, skips)
