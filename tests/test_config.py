"""params.yaml validation: one line naming the key and the allowed values, exit 2, nothing written."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nas.config import Params, load_params
from nas.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_params_are_valid_and_defaults_fill_gaps(tmp_path):
    shipped = load_params(ROOT / "params.yaml")
    assert shipped.data.dataset == "digits"
    (tmp_path / "p.yaml").write_text("search:\n  n_trials: 3\n")
    assert load_params(tmp_path / "p.yaml") == Params(search={"n_trials": 3})


@pytest.mark.parametrize(
    "text,message",
    [
        ("search:\n  n_trial: 3\n", "unknown key search.n_trial; allowed keys here: .*n_trials"),
        ("bogus: 1\n", "unknown key bogus; allowed keys here: data, search, retrain, tracking"),
        ("search:\n  epochs: 0\n", r"search.epochs: Input should be greater than or equal to 1 \(got 0\)"),
        ("search:\n  lr: fast\n", "search.lr: Input should be a valid number"),
        ("data:\n  dataset: imagenet\n", "data.dataset: Input should be 'digits', 'mnist5k', .* or 'svhn'"),
        ("search:\n  strategy: evolution\n", "search.strategy: unknown strategy 'evolution'; allowed: random, "
         "local_search, regularized_evolution, mcts, neat, reinforce, bananas, gp_thompson, tpe, gp, qmc, optuna_random, nsga2, "
         r"re \(= regularized_evolution\), local \(= local_search\), optuna.<any sampler class>"),
        ("search:\n  strategy: optuna.NoSuchSampler\n", "unknown strategy 'optuna.NoSuchSampler'"),
        ("search:\n  strategy: optuna.GridSampler\n", "search: strategy_options: bad value for optuna.GridSampler: .*search_space"),
        ("search:\n  strategy_options: {pop: 3}\n", "search.strategy_options: 'pop' is not an option of "
         "regularized_evolution; allowed: population_size, sample_size"),
        ("search:\n  strategy_options: {population_size: 1}\n", "search: strategy_options: bad value"),
        ("search:\n  strategy: tpe\n  strategy_options: {n_startup: 3}\n", "'n_startup' is not an option of tpe; "
         "allowed: .*n_startup_trials"),
        ("search: [1\n", "not valid YAML"),
        ("- 1\n", "top level must be a mapping"),
        ("search:\n  space: darts\n", "search.space: Input should be 'nb201' or 'macro'"),
        ("search:\n  strategy: neat\n  strategy_options: {population_size: 1}\n", "bad value for neat: "
         "population_size must be >= 2"),
    ],
)
def test_bad_params_give_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        load_params(path)
    assert "\n" not in str(info.value)


def test_any_strategy_on_either_space_by_name(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("search:\n  space: macro\n  strategy: optuna.BruteForceSampler\n"
                    "  strategy_options: {avoid_premature_stop: true}\n")
    assert load_params(path).search.strategy == "optuna.BruteForceSampler"
    path.write_text("search:\n  space: macro\n  strategy: re\n  strategy_options: {population_size: 4, sample_size: 2}\n")
    assert load_params(path).search.strategy == "regularized_evolution"


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize("entry", [["-m", "nas.cli", "search", "--params"], ["-m", "flows.search"]])
def test_entry_points_exit_2_with_one_line_and_write_nothing(tmp_path, entry):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump({"search": {"strategy": "evolution"}}))
    cmd = [sys.executable, *entry, "params.yaml"]
    result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(home)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "search.strategy: unknown strategy 'evolution'" in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["params.yaml"]


def test_a_data_error_inside_the_flow_is_one_line_and_exit_2(tmp_path, prefect_api_url):
    """Bad input found only once the flow runs (dataset files missing offline) still ends as one line, exit 2."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "params.yaml").write_text(yaml.safe_dump({"data": {"dataset": "cifar10", "download": False}}))
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_API_URL": prefect_api_url}
    result = subprocess.run([sys.executable, "-m", "flows.prepare"], cwd=work, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: dataset cifar10: files not found in data/raw/cifar-10-batches-py; put them there or "
                      "set data.download: true"]
    assert not (work / "data" / "prepared").exists()
