import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from nas.evaluation import count_flops, latency_ms
from nas.evaluation.evaluate import accuracy_interval, confusion_plot, promote_champion
from nas.reports import cell_plot
from nas.spaces.nb201 import decode


def test_flops_are_counted_by_torch_for_a_known_layer():
    layer = torch.nn.Linear(10, 4, bias=False)
    assert count_flops(layer, torch.randn(3, 10)) == 2 * 3 * 10 * 4


def test_latency_is_positive_and_model_left_on_cpu():
    model = torch.nn.Linear(10, 4)
    assert latency_ms(model, torch.randn(1, 10), repeats=5) > 0
    assert latency_ms(model, torch.randn(256, 10), repeats=2) > 0
    assert next(model.parameters()).device.type == "cpu"


def test_accuracy_interval_is_wilsons():
    low, high = accuracy_interval(268, 270)
    assert low == pytest.approx(0.9734, abs=1e-4) and high == pytest.approx(0.9980, abs=1e-4)
    assert accuracy_interval(0, 10)[0] == 0.0


def test_confusion_matrix_plot(tmp_path):
    y, pred = torch.tensor([0, 1, 2, 2]), torch.tensor([0, 2, 2, 2])
    path = confusion_plot(y, pred, ["a", "b", "c"], tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
    path = cell_plot(decode("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"),
                     tmp_path / "cell.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
