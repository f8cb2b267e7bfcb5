"""Bad input, everywhere a user can give it: each case runs the real command in a fresh copy of a small project
(params.yaml, prepared digits, an MLflow and an Optuna store that already hold a search) and must end with exit
code 2, exactly one line on stderr that names what is wrong, no traceback, and nothing changed on disk or in the
stores. ``benchmarks/bad_input.py`` runs this table from a fresh clone and counts the clean cases.

A case is a command line, a change to the project before it runs, and a pattern the error line must match.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import flip_a_tensor_bit

ROOT = Path(__file__).resolve().parents[1]
ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
SECRET = "s3cret-pw"
TABLE_HEADER = "arch,val_acc_12,val_acc_200,test_acc_200,train_time_12_s,params_m\n"


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    error: str  # a regular expression the one stderr line must contain
    setup: Callable[[Path], None] = lambda project: None
    flow: bool = False  # a Prefect flow entry point: it needs the test server
    forbidden: tuple[str, ...] = field(default=())  # text that must appear nowhere in the output


def nas(*args: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "nas.cli", *args)


def flow(stage: str) -> tuple[str, ...]:
    return (sys.executable, "-m", f"flows.{stage}")


# --- changes to the project ----------------------------------------------------------------------------------------


def params_text(text: str) -> Callable[[Path], None]:
    return lambda project: (project / "params.yaml").write_text(text)


def params_set(**changes: object) -> Callable[[Path], None]:
    """Set ``section.key`` values (dots in the keyword become ``__``) in the project's params.yaml."""

    def setup(project: Path) -> None:
        params = yaml.safe_load((project / "params.yaml").read_text())
        for dotted, value in changes.items():
            section, key = dotted.split("__")
            params[section][key] = value
        (project / "params.yaml").write_text(yaml.safe_dump(params))

    return setup


def prepared(change: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda project: change(project / "data" / "prepared")


def flip_byte(folder: Path) -> None:
    data = bytearray((folder / "train.pt").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "train.pt").write_bytes(bytes(data))


def manifest_edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        change(manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))

    return edit


def search_json_edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """models/search.json edited by hand (the one place a user can give retrain an architecture of their own)."""

    def edit(project: Path) -> None:
        found = json.loads((project / "models" / "search.json").read_text())
        change(found)
        (project / "models" / "search.json").write_text(json.dumps(found))

    return edit


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def setup(project: Path) -> None:
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return setup


# A retrain.json whose registered version the store does not hold (the template's search registered none).
RETRAINED = json.dumps({"mlflow": {"registered_model": "nas-digits", "version": "7", "run_id": "0" * 32}})


def evaluate_inputs(*unlink: str, **search: str) -> Callable[[Path], None]:
    """The evaluate stage's inputs: retrain.json naming version 7, the files ``unlink`` removed, ``search`` set in
    the search record best.pt carries (``test_sha256`` sets its test split's hash instead)."""

    def setup(project: Path) -> None:
        import torch

        (project / "models" / "retrain.json").write_text(RETRAINED)
        for name in unlink:
            (project / name).unlink()
        if search:
            ckpt = torch.load(project / "models" / "best.pt", weights_only=True)
            if "test_sha256" in search:
                ckpt["manifest"]["splits"]["test"]["sha256"] = search.pop("test_sha256")
            ckpt["search"].update(search)
            torch.save(ckpt, project / "models" / "best.pt")

    return setup


def npy(name: str, array: np.ndarray) -> Callable[[Path], None]:
    return lambda project: np.save(project / name, array)


def partial_table(project: Path) -> None:
    table = (ROOT / "nas" / "tabular" / "data" / "nb201_cifar10.csv").read_text().splitlines()
    (project / "partial.csv").write_text("\n".join(table[:11]) + "\n")


def deleted_experiment(name: str) -> Callable[[Path], None]:
    """An MLflow experiment ``name`` created and deleted in the project's store."""

    def setup(project: Path) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
        client.delete_experiment(client.create_experiment(name))

    return setup


def both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda project: [setup(project) for setup in setups] and None


NO_STRATEGY_OPTIONS = {"search__strategy_options": {}}
CORRUPT_DATA = {
    "a flipped byte": (flip_byte, r"train.pt: sha256 differs from the one in .*manifest.json"),
    "a wrong sha in the manifest": (manifest_edit(lambda m: m["splits"]["val"].update(sha256="0" * 64)),
                                    r"val.pt: sha256 differs"),
    "train.pt replaced by val.pt": (lambda f: shutil.copy(f / "val.pt", f / "train.pt"), r"train.pt: \d+ bytes, but"),
    "a truncated split": (lambda f: (f / "test.pt").write_bytes((f / "test.pt").read_bytes()[:64]),
                          r"test.pt: 64 bytes, but"),
    "an invalid manifest": (lambda f: (f / "manifest.json").write_text("{"), r"manifest.json: not valid JSON"),
    "a manifest without splits": (manifest_edit(lambda m: m.pop("splits")), r"manifest.json: splits: Field required"),
    "a deleted split": (lambda f: (f / "val.pt").unlink(), r"val.pt: missing"),
    "no prepared data": (lambda f: shutil.rmtree(f), r"manifest.json: not found; run the prepare stage first"),
}

CASES: dict[str, Case] = {
    # params.yaml
    "empty params.yaml": Case(nas("search"), r"params.yaml: (is )?empty", params_text("")),
    "params.yaml of comments only": Case(nas("search"), r"params.yaml: (is )?empty", params_text("# nothing\n")),
    "a duplicated key": Case(nas("search"), r"params.yaml: .*data.dataset.* (twice|duplicate|more than once)",
                             params_text("data:\n  dataset: digits\n  dataset: mnist5k\n")),
    "n_trials: true": Case(nas("search"), r"search.n_trials", params_text("search:\n  n_trials: true\n")),
    "lr: false": Case(nas("validate"), r"search.lr", params_text("search:\n  lr: false\n")),
    "a string where a number belongs": Case(nas("validate"), r"search.epochs",
                                            params_text("search:\n  epochs: four\n")),
    "an unknown key": Case(nas("validate"), r"unknown key search.n_trial; allowed keys here: .*n_trials",
                           params_text("search:\n  n_trial: 3\n")),
    "a strategy_options value of the wrong type": Case(
        nas("search"), r"search.strategy_options.population_size: must be an integer >= 2 \(got 'ten'\)",
        params_set(search__strategy="regularized_evolution",
                   search__strategy_options={"population_size": "ten", "sample_size": 3})),
    "a strategy_options value out of range": Case(
        nas("search"), r"search.strategy_options.population_size: must be an integer >= 2 \(got 1\)",
        params_set(search__strategy="regularized_evolution",
                   search__strategy_options={"population_size": 1, "sample_size": 1})),
    "strategy_options that contradict each other": Case(
        nas("search"), r"search.strategy_options.sample_size: must be at most population_size \(4\) \(got 5\)",
        params_set(search__strategy="regularized_evolution",
                   search__strategy_options={"population_size": 4, "sample_size": 5})),
    "the options of another strategy left behind": Case(
        nas("search"), r"search.strategy_options.population_size: not an option of tpe \(allowed: .*\); options are "
        r"per strategy: set strategy_options: \{\} when switching strategies",
        params_set(search__strategy="tpe", search__strategy_options={"population_size": 10, "sample_size": 3})),
    # multi-fidelity and multi-objective search
    "an unknown objective": Case(
        nas("search"), r"search.objectives: unknown objective 'energy_mj'; allowed: val_accuracy, params, .*latency_ms",
        params_set(search__objectives=["val_accuracy", "energy_mj"])),
    "an unknown direction": Case(
        nas("search"), r"search.objectives: direction of latency_ms must be one of maximize, minimize \(got 'low'\)",
        params_set(search__objectives=["val_accuracy", {"latency_ms": "low"}])),
    "a constraint on an objective not searched": Case(
        nas("search"), r"search.constraints: latency_ms is not an objective of this search \(objectives: val_accuracy, "
        r"params\)", params_set(search__objectives=["val_accuracy", "params"], search__strategy="nsga2",
                                search__constraints={"latency_ms": 5.0}, **NO_STRATEGY_OPTIONS)),
    "min_epochs above max_epochs": Case(
        nas("search"), r"search.min_epochs: must be at most max_epochs \(3\) \(got 5\)",
        params_set(search__pruner="hyperband", search__min_epochs=5, search__max_epochs=3)),
    "a pruner a multi-objective study cannot use": Case(
        nas("search"), r"search.pruner: hyperband cannot rank a multi-objective search .*allowed with several "
        r"objectives: none, successive_halving",
        params_set(search__objectives=["val_accuracy", "flops"], search__strategy="nsga2",
                   search__pruner="hyperband", **NO_STRATEGY_OPTIONS)),
    "a single-objective strategy with several objectives": Case(
        nas("search"), r"search.strategy: regularized_evolution optimises one objective; with several objectives "
        r"\(val_accuracy, params\) use one of mo_regularized_evolution, lemonade",
        params_set(search__objectives=["val_accuracy", "params"], search__strategy="regularized_evolution",
                   **NO_STRATEGY_OPTIONS)),
    "retrain.select on an objective not searched": Case(
        nas("retrain"), r"retrain.select: latency_ms is not an objective of the search",
        params_set(retrain__select="under:latency_ms=5")),
    "an unknown strategy": Case(nas("validate"), r"search.strategy: unknown strategy 'evolution'; allowed: random",
                                params_set(search__strategy="evolution", **NO_STRATEGY_OPTIONS)),
    "invalid YAML": Case(nas("validate"), r"params.yaml: not valid YAML", params_text("search: [1\n")),
    "a params file that does not exist": Case(nas("search", "--params", "nope.yaml"),
                                              r"nope.yaml: no such params file"),
    # the prepared data against its manifest and params.yaml
    **{f"search on {name}": Case(nas("search"), error, prepared(change))
       for name, (change, error) in CORRUPT_DATA.items()},
    "retrain on a flipped byte": Case(nas("retrain"), CORRUPT_DATA["a flipped byte"][1], prepared(flip_byte)),
    "retrain on an architecture edited into search.json": Case(
        nas("retrain"), r"models/search.json: trial \d+'s arch is not a nb201 architecture: bad edge 'conv_7x7~0'",
        search_json_edit(lambda found: found["best"].update(arch=ARCH.replace("nor_conv_3x3~0", "conv_7x7~0")))),
    "retrain on a search.json of an unknown space": Case(
        nas("retrain"), r"models/search.json: space 'nope' is not one of nb201, ",
        search_json_edit(lambda found: found.update(space="nope"))),
    "retrain on a search.json that is not JSON": Case(nas("retrain"), r"models/search.json: not JSON",
                                                      write("models/search.json", "{")),
    "evaluate on a damaged best.pt": Case(nas("evaluate"), r"models/best.pt: not a readable checkpoint: damaged",
                                          lambda project: flip_a_tensor_bit(project / "models" / "best.pt")),
    "evaluate on a deleted split": Case(nas("evaluate"), CORRUPT_DATA["a deleted split"][1],
                                        prepared(lambda f: (f / "val.pt").unlink())),
    "evaluate on a retrain.json without its MLflow record": Case(
        nas("evaluate"), r"models/retrain.json: lacks mlflow.registered_model, which the retrain stage writes"),
    "evaluate on a model trained on another split": Case(
        nas("evaluate"), r"models/best.pt: trained on other splits than data/prepared holds .*rerun the search and "
        r"retrain stages", evaluate_inputs(test_sha256="0" * 64)),
    "evaluate without the Optuna store": Case(
        nas("evaluate"), r"search.storage sqlite:///optuna.db: no such database, so no study '[^']+' to report",
        evaluate_inputs("optuna.db")),
    "evaluate on a storage that is not an Optuna store": Case(
        nas("evaluate"), r"search.storage sqlite:///mlflow.db: mlflow.db is not an Optuna study store; name the one "
        r"the search wrote", lambda project: (evaluate_inputs()(project),
                                              params_set(search__storage="sqlite:///mlflow.db")(project))),
    "evaluate on a study not in the store": Case(
        nas("evaluate"), r"search.storage sqlite:///optuna.db: holds no study 'gone', which models/best.pt was "
        r"searched in", evaluate_inputs(study_name="gone")),
    "evaluate without the MLflow store": Case(
        nas("evaluate"), r"tracking.uri sqlite:///mlflow.db: no MLflow store there; rerun the retrain stage",
        evaluate_inputs("mlflow.db")),
    "evaluate on a version not registered": Case(
        nas("evaluate"), r"tracking.uri sqlite:///mlflow.db: holds no version 7 of model 'nas-digits', which "
        r"models/retrain.json names", evaluate_inputs()),
    "the search flow on a flipped byte": Case(flow("search"), CORRUPT_DATA["a flipped byte"][1], prepared(flip_byte),
                                              flow=True),
    "the prepare flow with a bad dataset name": Case(flow("prepare"), r"data.dataset: Input should be 'digits'",
                                                     params_set(data__dataset="imagenet")),
    "the prepare flow without the dataset's files": Case(
        flow("prepare"), r"dataset cifar10: files not found in data/raw/cifar-10-batches-py",
        params_set(data__dataset="cifar10", data__download=False), flow=True),
    "data prepared from another dataset": Case(
        nas("search"), r"was prepared with data.dataset=digits, but params.yaml has data.dataset=mnist5k; "
        r"run `dvc repro prepare`", params_set(data__dataset="mnist5k")),
    "data prepared with another split seed": Case(nas("retrain"), r"was prepared with data.seed=0, but params.yaml "
                                                  r"has data.seed=7", params_set(data__seed=7)),
    # stores
    "a storage URL with a password": Case(
        nas("search"), r"search.storage: .*postgresql(\+psycopg2)?://nas:\*\*\*@127.0.0.1:9/trials",
        params_set(search__storage=f"postgresql+psycopg2://nas:{SECRET}@127.0.0.1:9/trials"), forbidden=(SECRET,)),
    "a storage URL whose driver is missing": Case(
        nas("search"), r"search.storage: mysql\+pymysql://nas:\*\*\*@db/trials needs the database driver PyMySQL: "
        r"pip install PyMySQL", params_set(search__storage=f"mysql+pymysql://nas:{SECRET}@db/trials"),
        forbidden=(SECRET,)),
    "an unusable storage URL": Case(nas("search"), r"search.storage: cannot open 'foo://bar'",
                                    params_set(search__storage="foo://bar")),
    "no workers": Case(nas("search"), r"search.workers: must be an integer >= 1 and <= 4096 \(got 0\)",
                       params_set(search__workers=0)),
    "workers not an integer": Case(nas("search"), r"search.workers: must be an integer >= 1 .*\(got 'two'\)",
                                   params_set(search__workers="two")),
    "more workers than lag": Case(nas("search"), r"search: workers \(8\) must be at most lag \(4\).*raise search.lag",
                                  params_set(search__workers=8)),
    "a Dask address that is no address": Case(
        nas("search"), r"search.dask_address: must be empty \(a local Dask cluster\) or a scheduler address such as "
        r"tcp://host:8786 \(got 'my-cluster'\)", params_set(search__executor="dask", search__dask_address="my-cluster")),
    "an unreachable Dask scheduler": Case(
        nas("search"), r"search.dask_address: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'",
        params_set(search__executor="dask", search__dask_address="tcp://127.0.0.1:9")),
    "a tracking URI with a password": Case(
        nas("search"), r"tracking.uri: .*nas:\*\*\*@127.0.0.1:9/mlflow",
        params_set(tracking__uri=f"postgresql+psycopg2://nas:{SECRET}@127.0.0.1:9/mlflow"), forbidden=(SECRET,)),
    # nas bench
    "bench: a header-only table": Case(nas("bench", "--table", "t.csv", "--runs", "1", "--no-tracking"), r"t.csv",
                                       write("t.csv", TABLE_HEADER)),
    "bench: a partial table": Case(nas("bench", "--table", "partial.csv", "--runs", "1", "--no-tracking"),
                                   r"partial.csv: .*10", partial_table),
    "bench: a table that is not a CSV": Case(nas("bench", "--table", "t.csv", "--runs", "1", "--no-tracking"),
                                             r"t.csv", write("t.csv", b"\x00\xff\xfe garbage")),
    "bench: a table with a missing column": Case(nas("bench", "--table", "t.csv", "--runs", "1", "--no-tracking"),
                                                 r"t.csv: missing column", write("t.csv", "arch,val_acc_12\n")),
    "bench: --out under a file": Case(nas("bench", "--runs", "1", "--no-tracking", "--out", "notes.txt/bench"),
                                      r"--out", write("notes.txt", "a file, not a folder\n")),
    "bench: an unknown strategy": Case(nas("bench", "--strategies", "random,nope", "--no-tracking"),
                                       r"--strategies: unknown strategy 'nope'"),
    "bench: --runs 0": Case(nas("bench", "--runs", "0", "--no-tracking"), r"--runs"),
    "bench: --runs not a number": Case(nas("bench", "--runs", "many"), r"--runs"),
    "bench: a budget below the dearest architecture": Case(nas("bench", "--budget-s", "100", "--runs", "1",
                                                               "--no-tracking"), r"--budget-s 100: less than"),
    "bench: an accuracy above 100 in the table": Case(
        nas("bench", "--table", "t.csv", "--runs", "1", "--no-tracking"), r"t.csv: row 2: val_acc_12",
        write("t.csv", TABLE_HEADER + f"{ARCH},101,90,90,10,0.1\n")),
    "bench: a tracking store driver that is missing": Case(
        nas("bench", "--runs", "1", "--tracking-uri", f"mysql+pymysql://nas:{SECRET}@db/mlflow"),
        r"--tracking-uri: mysql\+pymysql://nas:\*\*\*@db/mlflow needs the database driver PyMySQL",
        forbidden=(SECRET,)),
    "bench: a one-shot strategy": Case(nas("bench", "--strategies", "random,darts", "--no-tracking"),
                                       r"--strategies: darts trains a supernet on real data"),
    "bench: a strategy named twice": Case(nas("bench", "--strategies", "re,regularized_evolution", "--no-tracking"),
                                          r"--strategies: regularized_evolution is named twice"),
    "bench: an in-memory tracking store": Case(nas("bench", "--runs", "1", "--tracking-uri", "sqlite:///"),
                                               r"--tracking-uri sqlite:///: names no database file"),
    "bench: a deleted MLflow experiment": Case(nas("bench", "--runs", "1", "--experiment", "gone"),
                                               r"--experiment: experiment 'gone' is deleted in",
                                               deleted_experiment("gone")),
    "the bench flow with runs not a number": Case(flow("bench") + ("random", "many"), r"runs 'many'"),
    # nas predict
    "predict: an array holding NaN": Case(nas("predict", "--model", "models:/nas-digits@champion", "--input", "x.npy"),
                                          r"x.npy", npy("x.npy", np.full((8, 8), np.nan))),
    "predict: pixel values above 255": Case(nas("predict", "--model", "models:/nas-digits@champion", "--input",
                                                "x.npy"), r"x.npy.*0\.\.255", npy("x.npy", np.full((8, 8), 300.0))),
    "predict: fractional pixel values": Case(nas("predict", "--model", "models:/nas-digits@champion", "--input",
                                                 "x.npy"), r"x.npy: holds fractional values",
                                             npy("x.npy", np.full((8, 8), 0.5))),
    "predict: an empty array": Case(nas("predict", "--model", "models:/nas-digits@champion", "--input", "x.npy"),
                                    r"x.npy: holds no pixels", npy("x.npy", np.zeros((0, 8, 8)))),
    "predict: an input that does not exist": Case(nas("predict", "--model", "models:/nas-digits@champion", "--input",
                                                      "nope.png"), r"--input nope.png: no such file"),
    "predict: a model that is not registered": Case(nas("predict", "--model", "models:/nas-digits@champion",
                                                        "--input", "x.npy"), r"--model models:/nas-digits@champion",
                                                    npy("x.npy", np.zeros((8, 8)))),
    "predict: no MLflow store": Case(nas("predict", "--model", "models:/nas-digits@champion", "--input", "x.npy",
                                         "--tracking-uri", "sqlite:///elsewhere.db"), r"elsewhere.db",
                                     npy("x.npy", np.zeros((8, 8)))),
    "predict: a tracking store that is not a database": Case(
        nas("predict", "--model", "models:/nas-digits@champion", "--input", "x.npy", "--tracking-uri",
            "sqlite:///notes.txt"), r"--tracking-uri sqlite:///notes.txt: notes.txt is not a SQLite database",
        both(write("notes.txt", "hello"), npy("x.npy", np.zeros((8, 8))))),
    "search: a deleted MLflow experiment": Case(nas("search"), r"tracking.experiment: experiment 'gone' is deleted in",
                                                both(params_set(tracking__experiment="gone"),
                                                     deleted_experiment("gone"))),
    # the command line itself
    "an unknown command": Case(nas("serach"), r"serach"),
    "an unknown option": Case(nas("search", "--paramz", "params.yaml"), r"--paramz"),
}


# --- the project each case starts from ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def project_template(tmp_path_factory, prepared_digits, _migrated_mlflow_db) -> Path:
    """A small project after one search: params.yaml, data/prepared, models/search.json and models/best.pt, and the
    MLflow and Optuna stores that search wrote to."""
    import torch

    from nas.config import load_params
    from nas.search.stage import search
    from nas.spaces import SPACES, NetworkConfig

    project = tmp_path_factory.mktemp("project")
    shutil.copytree(prepared_digits, project / "data" / "prepared")
    shutil.copy(_migrated_mlflow_db, project / "mlflow.db")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["search"].update(strategy="random", strategy_options={}, n_trials=1, epochs=1, channels=2, batch_size=512)
    params["retrain"].update(epochs=1, warmup_epochs=0, channels=2, cells_per_stage=1)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    cwd, uri = Path.cwd(), os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.chdir(project)
    try:
        loaded = load_params("params.yaml")
        found = search(loaded, report=lambda _: None)
        space = SPACES["nb201"]
        manifest = json.loads((project / "data" / "prepared" / "manifest.json").read_text())
        network = NetworkConfig(2, 1, 1, 10)
        model = space.build(space.decode(found["best"]["arch"]), network)
        torch.save({"state_dict": model.state_dict(), "space": "nb201", "arch": found["best"]["arch"],
                    "network": network.__dict__, "manifest": manifest, "search": found}, project / "models" / "best.pt")
        # evaluate reads it first; every evaluate case fails before its content matters
        (project / "models" / "retrain.json").write_text("{}")
    finally:
        os.chdir(cwd)
        if uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = uri
    for lock in project.glob("*.lock"):
        lock.unlink()
    return project


def _sqlite_dump(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def snapshot(project: Path) -> dict[str, str]:
    """Every folder and file under the project, a file with a digest of its content; a SQLite store by its logical content, so opening
    it (write-ahead log files, a lock file) is not a change, while any row written is."""
    state = {}
    for path in sorted(project.rglob("*")):
        name = path.relative_to(project).as_posix()
        if path.is_dir():
            state[name] = "<folder>"  # a folder a failing command made (checkpoints/, reports/) is a change too
            continue
        if path.name.endswith(("-wal", "-shm", ".lock")):
            continue
        state[name] = hashlib.sha256(_sqlite_dump(path).encode() if path.suffix == ".db"
                                     else path.read_bytes()).hexdigest()
    return state


def run_case(case: Case, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(case.argv, check=False, cwd=project, env=env, capture_output=True, text=True, timeout=300)


@dataclass(frozen=True)
class Outcome:
    result: subprocess.CompletedProcess
    before: dict[str, str]  # the project's snapshot before the command
    project: Path


@pytest.fixture(scope="module")
def outcomes(request, project_template, tmp_path_factory) -> dict[str, Outcome]:
    """Every selected case run in its own copy of the project, two commands at a time: a case is mostly a new
    interpreter importing torch, MLflow and Prefect, which a second core halves."""
    selected = [item.callspec.params["name"] for item in request.session.items
                if item.originalname == "test_bad_input_is_one_line_exit_2_and_changes_nothing"]
    api_url = request.getfixturevalue("prefect_api_url") if any(CASES[n].flow for n in selected) else None

    def run(name: str) -> Outcome:
        case, home = CASES[name], tmp_path_factory.mktemp("case")
        project = home / "project"
        shutil.copytree(project_template, project)
        case.setup(project)
        before = snapshot(project)
        env = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(ROOT),
               "PREFECT_HOME": str(home / "prefect")}
        if case.flow:
            env["PREFECT_API_URL"] = api_url
        return Outcome(run_case(case, project, env), before, project)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(selected, pool.map(run, selected), strict=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(name, outcomes):
    case, outcome = CASES[name], outcomes[name]
    result = outcome.result
    output = result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert len(lines) == 1, output
    assert re.search(case.error, lines[0]), lines[0]
    assert not any(text in output for text in case.forbidden), output
    assert snapshot(outcome.project) == outcome.before, "the command changed files or stores"


def test_evaluate_refuses_an_output_it_cannot_write_before_it_writes_anything(project_template, tmp_path,
                                                                             monkeypatch):
    """A read-only reports/report.md (made so for root too: root may write any file) stops evaluate before the
    metrics, plots or export are written."""
    from nas.config import load_params
    from nas.errors import UserError
    from nas.evaluation.evaluate import evaluate

    project = tmp_path / "project"
    shutil.copytree(project_template, project)
    evaluate_inputs()(project)
    (project / "reports").mkdir()
    locked = project / "reports" / "report.md"
    locked.write_text("an earlier run's report\n")
    locked.chmod(0o444)
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        False if Path(path).resolve() == locked and mode & os.W_OK else access(path, mode, **kw)))
    monkeypatch.chdir(project)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = snapshot(project)
    with pytest.raises(UserError, match=r"^the evaluate stage's outputs: reports/report.md is not writable; make it "
                                        r"writable or remove it$"):
        evaluate(load_params("params.yaml"), report=lambda _: None)
    assert snapshot(project) == before
