import io
import shutil
import sqlite3
from contextlib import closing

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from nas.cli import main
from nas.data import load_prepared, normalize
from nas.spaces import SPACES, NetworkConfig
from nas.spaces.darts import DARTS_V2
from nas.training import init_model

ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def registered(prepared_digits, tmp_path_factory):
    """A small network registered the way the retrain stage does it, in a fresh MLflow store."""
    from mlflow.tracking import MlflowClient

    from nas.tracking import register_model
    from nas.training.retrain import serving_inputs

    folder = tmp_path_factory.mktemp("serving")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    data = load_prepared(prepared_digits)
    space = SPACES["nb201"]
    model = init_model(lambda: space.build(space.decode(ARCH), NetworkConfig(4, 1, 1, 10)), 0).eval()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # the default artifact root (./mlruns) lands next to the store
        client = MlflowClient(uri)
        run_id = client.create_run(client.create_experiment("serving")).info.run_id
        register_model(uri, run_id, model, *serving_inputs(data.manifest, data.test.x[:2]), "digits-model")
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


def _npy(array):
    return lambda d: np.save(d / "x.npy", array) or "x.npy"


@pytest.mark.parametrize("make,message", [
    (_npy(np.zeros((2, 28, 28), np.uint8)), "--input x.npy: shape (2, 28, 28), but the model takes (1, 8, 8) images"),
    (lambda d: Image.new("L", (28, 28)).save(d / "x.png") or "x.png", "--input x.png: image is 28x28, the model takes"),
    (lambda d: (d / "x.txt").write_text("hi") and "x.txt", "--input x.txt: not an image file or .npy array"),
    (lambda d: "missing.npy", "--input missing.npy: no such file"),
    (lambda d: (d / "pngs").mkdir() or "pngs", "--input pngs: a folder; give its files (--input pngs/*.png)"),
    (lambda d: np.save(d / "x.npy", np.zeros((2, 28, 28), np.uint8)) or (d / "x.npy").rename(d / "X.NPY") and "X.NPY",
     "--input X.NPY: shape (2, 28, 28), but the model takes (1, 8, 8) images"),  # read as .npy, whatever the case
    (_npy(np.full((8, 8), np.nan)), "--input x.npy: holds NaN or infinite values; pixels must be whole numbers 0..255"),
    (_npy(np.full((8, 8), -np.inf)), "--input x.npy: holds NaN or infinite values"),
    (_npy(np.arange(64).reshape(8, 8) * 5), "--input x.npy: holds values from 0 to 315; pixels must be whole numbers"),
    (_npy(np.full((8, 8), -1, np.int8)), "--input x.npy: holds values from -1 to -1"),
    (_npy(np.full((8, 8), 0.5)), "--input x.npy: holds fractional values such as 0.5; pixels must be whole numbers "
                                 "0..255, not normalised"),
    (_npy(np.full((8, 8), "7")), "--input x.npy: holds <U1 values; pixels must be whole numbers 0..255"),
    (_npy(np.zeros((8, 8), bool)), "--input x.npy: holds bool values"),
    (_npy(np.zeros((0, 8, 8))), "--input x.npy: holds no pixels (shape (0, 8, 8))"),
    (lambda d: (d / "x.npy").write_text("not numpy") and "x.npy", "--input x.npy: not a readable .npy array"),
    (lambda d: np.savez(d / "x.npy", a=np.zeros(2)) or "x.npy.npz", "--input x.npy.npz: not an image file"),
    (lambda d: (d / "x.png").write_bytes(_noise_png()[:70]) and "x.png", "--input x.png: not an image file"),
    (lambda d: Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(d / "x.tiff") or "x.tiff",
     "--input x.tiff: a 32-bit float image, whose range is unknown; save it with 8 or 16 bits per channel"),
])
def test_bad_inputs_are_one_line_exit_2_and_change_nothing(registered, capsys, tmp_path, monkeypatch, make, message):
    uri, _, _ = registered
    monkeypatch.chdir(tmp_path)
    name = make(tmp_path)
    before = _snapshot(tmp_path)
    code, out, err = run(capsys, "--model", "models:/digits-model/1", "--input", name, "--tracking-uri", uri)
    assert code == 2 and out == [] and len(err) == 1 and err[0].startswith(f"nas: error: {message}"), err
    assert _snapshot(tmp_path) == before


def _noise_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _snapshot(folder):
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_bad_input_is_reported_before_a_missing_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    np.save(tmp_path / "x.npy", np.full((8, 8), np.nan))
    code, _, err = run(capsys, "--model", "models:/digits-model/1", "--input", "x.npy")
    assert code == 2 and err == ["nas: error: --input x.npy: holds NaN or infinite values; pixels must be whole "
                                 "numbers 0..255"]
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


@pytest.mark.parametrize("argv,env,shown", [
    ([], None, "--tracking-uri sqlite:///mlflow.db"),
    (["--tracking-uri", "sqlite:///sub/m.db"], None, "--tracking-uri sqlite:///sub/m.db"),
    (["--tracking-uri", "mlruns"], None, "--tracking-uri mlruns"),
    (["--tracking-uri", "file:./store"], None, "--tracking-uri file:./store"),
    ([], "sqlite:///env.db", "MLFLOW_TRACKING_URI=sqlite:///env.db"),
])
def test_a_store_that_does_not_exist_is_not_created(tmp_path, monkeypatch, capsys, argv, env, shown):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # else MLflow refuses a file store before creating one
    if env:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.uint8))
    code, out, err = run(capsys, "--model", "models:/digits-model/1", "--input", "x.npy", *argv)
    assert code == 2 and out == [] and err == [f"nas: error: {shown}: no MLflow store there; name the store the model "
                                               f"was registered in (--tracking-uri URI or MLFLOW_TRACKING_URI)"]
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_a_sqlite_database_that_is_not_an_mlflow_store_is_left_untouched(tmp_path, monkeypatch, capsys):
    """An Optuna study's database named as the store: MLflow would fail on its migration history (Optuna's), and
    add its tables to any other SQLite file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    optuna.create_study(storage="sqlite:///optuna.db", study_name="s")
    with closing(sqlite3.connect("notes.db")) as db, db:
        db.execute("CREATE TABLE notes (text TEXT)")
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.uint8))
    for name in ("optuna.db", "notes.db"):
        before = (tmp_path / name).read_bytes()
        code, out, err = run(capsys, "--model", "models:/digits-model/1", "--input", "x.npy",
                             "--tracking-uri", f"sqlite:///{name}")
        assert code == 2 and out == [] and err == [
            f"nas: error: --tracking-uri sqlite:///{name}: {name} is a SQLite database but not an MLflow store; name "
            "the store the model was registered in (--tracking-uri URI or MLFLOW_TRACKING_URI)"]
        assert (tmp_path / name).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db", "optuna.db", "x.npy"]


def test_a_good_predict_writes_nothing_either(registered, capsys, tmp_path, monkeypatch):
    uri, _, _ = registered
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.full((2, 8, 8), 7.0))  # whole values in a float array are fine
    before = _snapshot(tmp_path)
    code, out, err = run(capsys, "--model", "models:/digits-model/1", "--input", "x.npy", "--tracking-uri", uri)
    assert code == 0 and [line.split("\t")[0] for line in out] == ["x.npy[0]", "x.npy[1]"]
    assert _snapshot(tmp_path) == before


def test_a_missing_model_is_one_line_and_exit_2(registered, capsys, tmp_path):
    uri, _, _ = registered
    np.save(tmp_path / "x.npy", np.zeros((8, 8), np.uint8))
    code, out, err = run(capsys, "--model", "models:/no-such-model@champion", "--input", str(tmp_path / "x.npy"),
                         "--tracking-uri", uri)
    assert code == 2 and len(err) == 1 and "--model models:/no-such-model@champion: cannot load it" in err[0], err


@pytest.mark.parametrize("space_name,arch", [
    ("nb201", ARCH), ("macro", "conv:k3:w2:s2 | sep_conv:k5:w1:s1:concat(0) | max_pool:k3:s2:sum(1)"),
    ("darts", repr(DARTS_V2))])
def test_exported_onnx_matches_pytorch_on_held_out_images(prepared_digits, tmp_path, space_name, arch):
    from nas.serving.export import export

    data = load_prepared(prepared_digits)
    space = SPACES[space_name]
    model = init_model(lambda: space.build(space.decode(arch), NetworkConfig(4, 1, 1, 10)), 0).eval()
    x = normalize(data.test.x[:64], data.manifest)
    result = export(model, x, tmp_path / "export")
    assert result["format"] == "onnx" and result["parity"] and result["max_abs_diff"] < 1e-4
    # One self-contained file: copied alone elsewhere, ONNX Runtime runs it (no model.onnx.data beside it).
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == ["model.onnx"]
    import onnxruntime

    (tmp_path / "elsewhere").mkdir()
    copy = shutil.copy(tmp_path / "export" / "model.onnx", tmp_path / "elsewhere")
    session = onnxruntime.InferenceSession(str(copy), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0], model(x).numpy(),
                                   rtol=1e-3, atol=1e-4)


def test_an_export_leaves_only_its_own_format(prepared_digits, tmp_path, monkeypatch):
    """models/export/ after an ONNX export that fell back to TorchScript, and after the next one that did not: one
    model file each time, never a stale one of the other format beside it. A file that cannot be written is an
    error, not a reason to fall back."""
    from nas.serving import export as exporting

    data = load_prepared(prepared_digits)
    space = SPACES["nb201"]
    model = init_model(lambda: space.build(space.decode(ARCH), NetworkConfig(4, 1, 1, 10)), 0).eval()
    x, folder = normalize(data.test.x[:8], data.manifest), tmp_path / "export"
    exporting.export(model, x, folder)
    onnx = exporting._onnx

    def unexportable(*args):
        raise RuntimeError("an op ONNX has no symbolic function for")

    monkeypatch.setattr(exporting, "_onnx", unexportable)
    assert exporting.export(model, x, folder)["format"] == "torchscript (ONNX export failed: RuntimeError)"
    assert sorted(p.name for p in folder.iterdir()) == ["model.torchscript.pt"]
    monkeypatch.setattr(exporting, "_onnx", onnx)
    assert exporting.export(model, x, folder)["format"] == "onnx"
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx"]

    def unwritable(*args):
        raise PermissionError(13, "Permission denied", str(folder / "model.onnx"))

    monkeypatch.setattr(exporting, "_onnx", unwritable)
    with pytest.raises(PermissionError):
        exporting.export(model, x, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("channels", [1, 3])
def test_a_16_bit_png_is_scaled_to_the_8_bit_pixels_it_holds(tmp_path, channels):
    """PIL's convert clips 16-bit values above 255 to white; a 16-bit PNG of an 8-bit image must read as that image."""
    from nas.serving.predict import load_images

    eight = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(eight).save(tmp_path / "8.png")
    Image.fromarray(eight.astype(np.uint16) * 257).save(tmp_path / "16.png")  # 255 -> 65535
    assert Image.open(tmp_path / "16.png").mode == "I;16"
    batch, _ = load_images([str(tmp_path / "16.png"), str(tmp_path / "8.png")], [channels, 8, 8])
    assert batch.dtype == torch.uint8 and torch.equal(batch[0], batch[1])
    assert torch.equal(batch[1, 0], torch.from_numpy(eight))
