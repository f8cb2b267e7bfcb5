import numpy as np
import pytest
import torch
from PIL import Image

from nas.cli import main
from nas.data import load_prepared, normalize
from nas.spaces import SPACES, NetworkConfig
from nas.training import init_model

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def registered(prepared_digits, tmp_path_factory):
    """A small network registered the way the retrain stage does it, in a fresh MLflow store."""
    import mlflow

    from nas.training.retrain import log_model

    uri = f"sqlite:///{tmp_path_factory.mktemp('serving') / 'mlflow.db'}"
    data = load_prepared(prepared_digits)
    space = SPACES["nb201"]
    model = init_model(lambda: space.build(space.decode(ARCH), NetworkConfig(4, 1, 1, 10)), 0).eval()
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run():
        log_model(model, data.manifest, data.test.x[:2], "digits-model")
    return uri, model, data


def run(capsys, *argv):
    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_predicts_npy_and_image_files_like_the_model(registered, capsys, tmp_path):
    uri, model, data = registered
    images = data.test.x[:3, 0].numpy()  # (3, 8, 8) uint8
    np.save(tmp_path / "three.npy", images)
    Image.fromarray(images[0]).save(tmp_path / "one.png")
    code, out, err = run(capsys, "--model", "models:/digits-model/1", "--input", str(tmp_path / "three.npy"),
                         str(tmp_path / "one.png"), "--tracking-uri", uri)
    assert code == 0 and err == []
    with torch.no_grad():
        expected = torch.softmax(model(normalize(data.test.x[:3], data.manifest)), dim=1).max(dim=1)
    assert len(out) == 4
    for line, k, p in zip(out[:3], expected.indices.tolist(), expected.values.tolist()):
        name, label, probability = line.split("\t")
        assert label == data.manifest["classes"][k] and float(probability) == pytest.approx(p, abs=1e-3)
    assert out[3].split("\t")[1:] == out[0].split("\t")[1:]  # the PNG holds the first image


@pytest.mark.parametrize("make,message", [
    (lambda d: np.save(d / "x.npy", np.zeros((2, 28, 28), np.uint8)) or d / "x.npy",
     "shape (2, 28, 28), but the model takes (1, 8, 8) images"),
    (lambda d: Image.new("L", (28, 28)).save(d / "x.png") or d / "x.png", "image is 28x28, the model takes 8x8"),
    (lambda d: (d / "x.txt").write_text("hi") and d / "x.txt", "not an image file or .npy array"),
    (lambda d: d / "missing.npy", "no such file"),
])
def test_bad_inputs_are_one_line_and_exit_2(registered, capsys, tmp_path, make, message):
    uri, _, _ = registered
    path = make(tmp_path)
    code, out, err = run(capsys, "--model", "models:/digits-model/1", "--input", str(path), "--tracking-uri", uri)
    assert code == 2 and out == [] and len(err) == 1 and message in err[0], err


def test_a_missing_model_is_one_line_and_exit_2(registered, capsys, tmp_path):
    uri, _, _ = registered
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.uint8))
    code, out, err = run(capsys, "--model", "models:/no-such-model@champion", "--input", str(tmp_path / "x.npy"),
                         "--tracking-uri", uri)
    assert code == 2 and len(err) == 1 and "--model models:/no-such-model@champion: cannot load it" in err[0], err


@pytest.mark.parametrize("space_name,arch", [
    ("nb201", ARCH), ("macro", "conv:k3:w2:s2 | sep_conv:k5:w1:s1:concat(0) | max_pool:k3:s2:sum(1)")])
def test_exported_onnx_matches_pytorch_on_held_out_images(prepared_digits, tmp_path, space_name, arch):
    from nas.serving.export import export

    data = load_prepared(prepared_digits)
    space = SPACES[space_name]
    model = init_model(lambda: space.build(space.decode(arch), NetworkConfig(4, 1, 1, 10)), 0).eval()
    result = export(model, normalize(data.test.x[:64], data.manifest), tmp_path)
    assert result["format"] == "onnx" and result["parity"] and result["max_abs_diff"] < 1e-4
    assert (tmp_path / "model.onnx").stat().st_size > 0
