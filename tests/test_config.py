"""params.yaml validation: one line naming the key and the allowed values, exit 2, nothing written."""

import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
import yaml
from annotated_types import GroupedMetadata

from nas.config import Params, allowed_values, load_params
from nas.errors import UserError
from nas.spaces import SPACES
from nas.strategies import OPTUNA_SAMPLERS, STRATEGIES
from nas.strategy_registry import (
    _OPTUNA_CONSTRAINTS,
    NATIVE,
    STRATEGY_NAMES,
    constraints,
    strategy_class,
    strategy_parameters,
)

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_params_are_valid_and_defaults_fill_gaps(tmp_path):
    shipped = load_params(ROOT / "params.yaml")
    assert shipped.data.dataset == "digits"
    (tmp_path / "p.yaml").write_text("search:\n  n_trials: 3\n")
    assert load_params(tmp_path / "p.yaml") == Params(search={"n_trials": 3})


def _leaves(values: dict, prefix: str = "") -> dict:
    """{"search.n_trials": 24, ...}; strategy_options is one value."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and key not in ("strategy_options", "constraints"):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_readme_table_states_every_key_with_the_code_default():
    section = (ROOT / "README.md").read_text().split("## Configuration (`params.yaml`)")[1].split("\n## ")[0]
    documented = {}
    for row in (line for line in section.splitlines() if line.startswith("| `")):
        keys, default, _meaning = row.strip("|").split(" | ")
        for key in re.findall(r"`([^`]+)`", keys):
            documented[key] = yaml.safe_load(default.strip().strip("`"))
    defaults = _leaves(Params().model_dump())
    assert documented == defaults


def test_shipped_params_set_the_code_defaults():
    """strategy_options too: {} (each strategy's own defaults), so switching strategy in params.yaml or with a
    command-line override leaves no option of another strategy behind."""
    shipped, defaults = _leaves(load_params(ROOT / "params.yaml").model_dump()), _leaves(Params().model_dump())
    assert shipped == defaults and shipped["search.strategy_options"] == {}


SECTIONS = "data, search, retrain, tracking"
SEARCH_KEYS = ("epochs, batch_size, lr, momentum, weight_decay, label_smoothing, warmup_epochs, augment, cutout, "
               "channels_last, compile, channels, cells_per_stage, space, strategy, strategy_options, n_trials, seed, "
               "storage, study_name, workers, executor, dask_address, lag, objectives, constraints, pruner, min_epochs, "
               "max_epochs, reduction_factor, curve_threshold, inherit, child_epochs, zero_cost_warmup, latency_batch_size, latency_device, timeout_s, oneshot")


@pytest.mark.parametrize(
    "text,line",
    [
        # nothing in it: every stage would silently run on the defaults
        ("", f"is empty; it must set at least one of the sections {SECTIONS}"),
        ("# search:\n#   n_trials: 3\n", f"is empty; it must set at least one of the sections {SECTIONS}"),
        ("null\n", f"is empty; it must set at least one of the sections {SECTIONS}"),
        ("{}\n", f"is empty; it must set at least one of the sections {SECTIONS}"),
        ("- 1\n", f"top level must be a mapping with keys: {SECTIONS}"),
        ("search: [1\n", "not valid YAML at line 2: expected ',' or ']', but got '<stream end>'"),
        ("search:\n", f"search: must be a mapping with keys {SEARCH_KEYS} (got None)"),
        # a key given twice, at any depth (PyYAML would keep the last)
        ("data:\n  seed: 1\ndata:\n  seed: 2\n",
         "key data given twice: at line 1 and again at line 3; each key may appear once"),
        ("data:\n  dataset: digits\n  download: true\n  dataset: mnist\n",
         "key data.dataset given twice: at line 2 and again at line 4; each key may appear once"),
        ("search:\n  strategy_options:\n    population_size: 4\n    sample_size: 2\n    population_size: 8\n",
         "key search.strategy_options.population_size given twice: at line 3 and again at line 5; each key may "
         "appear once"),
        # booleans are not numbers and numbers are not booleans; every message states the type and range
        ("search:\n  n_trials: true\n", "search.n_trials: must be an integer >= 1 and <= 1000000 (got True)"),
        ("search:\n  n_trials: 2.5\n", "search.n_trials: must be an integer >= 1 and <= 1000000 (got 2.5)"),
        ("search:\n  n_trials: '24'\n", "search.n_trials: must be an integer >= 1 and <= 1000000 (got '24')"),
        ("search:\n  epochs: 0\n", "search.epochs: must be an integer >= 1 and <= 10000 (got 0)"),
        ("retrain:\n  lr: false\n", "retrain.lr: must be a number > 0 and <= 10 (got False)"),
        ("search:\n  lr: fast\n", "search.lr: must be a number > 0 and <= 10 (got 'fast')"),
        ("data:\n  val_fraction: 0.5\n", "data.val_fraction: must be a number > 0 and < 0.5 (got 0.5)"),
        ("data:\n  download: 1\n", "data.download: must be true or false (got 1)"),
        ("retrain:\n  compile: 'no'\n", "retrain.compile: must be true or false (got 'no')"),
        ("retrain:\n  seed: -1\n", "retrain.seed: must be an integer >= 0 (got -1)"),
        ("data:\n  root: 3\n", "data.root: Input should be a valid string (got 3)"),
        ("search:\n  space: hierarchical\n", "search.space: Input should be 'nb201', 'macro' or 'darts' (got 'hierarchical')"),
        # one-shot search
        ("retrain:\n  auxiliary_weight: 0.4\n", "retrain.auxiliary_weight: only the darts space's network has it "
         "(search.space: nb201); set it to 0 (got 0.4)"),
        ("search:\n  strategy: darts\n  space: macro\n",
         "search.space: macro has no supernet; one-shot strategies (darts) run on nb201 or darts"),
        ("search:\n  strategy: gdas\n  oneshot:\n    alpha_lr: 0\n",
         "search.oneshot.alpha_lr: must be a number > 0 and <= 10 (got 0)"),
        ("search:\n  strategy: random\n  oneshot:\n    epochs: 3\n",
         "search.oneshot: is for one-shot strategies (darts, darts2, gdas, snas, rsws, spos, enas, smash); random is "
         "not one: remove the block or pick one of them"),
        ("search:\n  strategy: snas\n  oneshot:\n    epoch: 3\n", "unknown key search.oneshot.epoch; allowed keys "
         "here: epochs, batch_size, w_lr, w_lr_min, momentum, w_weight_decay, grad_clip, alpha_lr, alpha_weight_decay, "
         "tau_max, tau_min, unroll_r, searcher"),
        ("search:\n  strategy: gdas\n  oneshot:\n    tau_min: 5\n    tau_max: 1\n",
         "search.oneshot: tau_min (5.0) must be at most tau_max (1.0)"),
        ("search:\n  strategy: gdas\n  oneshot:\n    tau_max: .inf\n",  # an infinite τ would hang the sampler
         "search.oneshot.tau_max: must be a finite number > 0, or null (got inf)"),
        ("search:\n  strategy: darts2\n  oneshot:\n    unroll_r: 2\n",
         "search.oneshot.unroll_r: must be a number > 0 and <= 1 (got 2)"),
        ("search:\n  strategy: gdas\n  oneshot:\n    tau_min: 20\n",  # against the paper's tau_max
         "search.oneshot: tau_min (20.0) must be at most tau_max (10.0; null is gdas's 10.0 to 0.1)"),
        ("search:\n  strategy: spos\n  oneshot:\n    tau_max: 3\n",
         "search.oneshot.tau_max: spos does not use it (it reads epochs, batch_size, w_lr, w_lr_min, momentum, "
         "w_weight_decay, grad_clip, searcher); remove it"),
        ("search:\n  strategy: smash\n  oneshot:\n    w_lr: 9.0\n",
         "search.oneshot.w_lr: smash does not use it (it reads epochs, batch_size); remove it"),
        ("search:\n  strategy: spos\n  workers: 2\n",
         "search.workers: spos trains one supernet in one process, epoch after epoch: set 1 (got 2)"),
        ("search:\n  strategy: darts\n  timeout_s: 60\n",
         "search.timeout_s: darts trains one supernet in one process, epoch after epoch: set null (got 60.0)"),
        ("search:\n  pruner: curve\n  epochs: 3\n",  # a pruner that could never stop a trial
         "search.max_epochs: must be above 3 (the 3 epochs a curve fit needs) for pruner curve to stop any trial "
         "(got null, so epochs 3)"),
        ("search:\n  pruner: hyperband\n  min_epochs: 6\n  max_epochs: 6\n",
         "search.max_epochs: must be above 6 (min_epochs) for pruner hyperband to stop any trial (got 6)"),
        ("search:\n  strategy: enas\n  oneshot:\n    searcher: random\n",
         "search.oneshot.searcher: only spos takes one; enas proposes architectures its own way (rsws and smash at "
         "random, enas by its controller)"),
        ("search:\n  strategy: spos\n  oneshot:\n    searcher: gdas\n",
         "search.oneshot.searcher: must be a strategy that proposes architectures, not the one-shot gdas (got 'gdas')"),
        ("search:\n  strategy: darts\n  strategy_options:\n    epochs: 3\n",
         "search.strategy_options.epochs: not an option of darts (allowed: none); options are per strategy: set "
         "strategy_options: {} when switching strategies"),
        # estimation beyond low fidelity: inheritance, the curve pruner, the zero-cost warm-up
        ("search:\n  strategy: random\n  inherit: true\n", "search.inherit: needs a strategy whose children have a "
         "parent (regularized_evolution, local_search); random has none"),
        ("search:\n  strategy: darts\n  inherit: true\n", "search.inherit: needs a strategy whose children have a "
         "parent (regularized_evolution, local_search); darts has none"),
        ("search:\n  space: darts\n  inherit: true\n", "search.inherit: network morphisms are written for macro, "
         "nb201 (got space: darts)"),
        ("search:\n  child_epochs: 1\n", "search.child_epochs: is the epochs of a child that inherits its parent's "
         "weights: set inherit: true or remove it"),
        ("search:\n  pruner: curve\n  curve_threshold: 1.5\n",
         "search.curve_threshold: must be a number > 0 and < 1 (got 1.5)"),
        ("search:\n  strategy: bohb\n  pruner: curve\n", "search.pruner: curve extrapolates every trial to "
         "max_epochs, but bohb trains each trial to the budget it chooses; with bohb use pruner: none"),
        ("search:\n  study_name: bob's study\n", "search.study_name: must be a name without quotes or "
         "backslashes (MLflow filters runs by it) (got \"bob's study\")"),
        ("search:\n  strategy: bohb\n  pruner: hyperband\n  max_epochs: 9\n", "search.pruner: hyperband would stop "
         "trials bohb gave a budget (and judge them against max_epochs, not their budget): bohb's brackets are its "
         "early stopping; with bohb use pruner: none"),
        ("search:\n  strategy: bohb\n  strategy_options: {min_budget: 0.1}\n", "search.strategy_options.min_budget: "
         "bohb's budgets 0.148, 0.444, 1.33, 4 train [1, 1, 1, 4] epochs: two budgets round to the same whole "
         "epochs; raise min_budget or eta so that each budget is its own number of epochs"),
        ("search:\n  zero_cost_warmup:\n    proxy: synflo\n", "search.zero_cost_warmup.proxy: Input should be "
         "'grad_norm', 'snip', 'grasp', 'fisher', 'jacob_cov', 'synflow', 'naswot', 'params' or 'flops' (got 'synflo')"),
        ("search:\n  zero_cost_warmup:\n    pool: 5\n    top_k: 10\n",
         "search.zero_cost_warmup.top_k: must be at most pool (5) (got 10)"),
        # objectives, constraints and pruners (multi-fidelity, multi-objective search)
        ("search:\n  objectives: [val_accuracy, energy]\n", "search.objectives: unknown objective 'energy'; allowed: "
         "val_accuracy, params, params_m, flops, mflops, latency_ms"),
        ("search:\n  objectives: [val_accuracy, {params: smaller}]\n",
         "search.objectives: direction of params must be one of maximize, minimize (got 'smaller')"),
        ("search:\n  objectives: [params]\n",
         "search.objectives: must include val_accuracy (the objective training measures)"),
        ("search:\n  objectives: [val_accuracy, params]\n  strategy: nsga2\n  constraints: {latency_ms: 5.0}\n",
         "search.constraints: latency_ms is not an objective of this search (objectives: val_accuracy, params); add "
         "it to search.objectives or drop the constraint"),
        ("search:\n  min_epochs: 5\n  max_epochs: 3\n", "search.min_epochs: must be at most max_epochs (3) (got 5)"),
        ("search:\n  min_epochs: 5\n",
         "search.min_epochs: must be at most epochs (4), which max_epochs: null stands for (got 5)"),
        ("search:\n  objectives: [val_accuracy, params]\n  strategy: nsga2\n  pruner: median\n",
         "search.pruner: median cannot rank a multi-objective search (val_accuracy, params); allowed with several "
         "objectives: none, successive_halving"),
        ("search:\n  objectives: [val_accuracy, params]\n", "search.strategy: regularized_evolution optimises one "
         "objective; with several objectives (val_accuracy, params) use one of mo_regularized_evolution, lemonade, "
         "ehvi, tpe, gp, qmc, optuna_random, nsga2, motpe"),
        ("search:\n  objectives: [val_accuracy, params, latency_ms]\n  strategy: ehvi\n",
         "search.objectives: ehvi takes every objective but val_accuracy as known before training (params, params_m, "
         "flops, mflops); latency_ms is timed per trial (got val_accuracy, params, latency_ms); for latency_ms use "
         "lemonade, mo_regularized_evolution, nsga2 or motpe"),
        ("retrain:\n  select: fastest\n", "retrain.select: must be best, knee or under:<objective>=<bound> such as "
         "under:latency_ms=5.0 (got 'fastest')"),
        ("retrain:\n  select: under:latency_ms=5\n",
         "retrain.select: latency_ms is not an objective of the search (search.objectives: val_accuracy)"),
        # strategy options: each one against the type and range its strategy declares
        ("search:\n  strategy_options: {pop: 3}\n", "search.strategy_options.pop: not an option of "
         "regularized_evolution (allowed: population_size, sample_size); options are per strategy: set "
         "strategy_options: {} when switching strategies"),
        # switching strategy with the options of the previous one left behind
        ("search:\n  strategy: mcts\n  strategy_options: {population_size: 10, sample_size: 3}\n",
         "search.strategy_options.population_size: not an option of mcts (allowed: exploration); options are per "
         "strategy: set strategy_options: {} when switching strategies"),
        ("search:\n  strategy_options: {population_size: a}\n",
         "search.strategy_options.population_size: must be an integer >= 2 (got 'a')"),
        ("search:\n  strategy_options: {population_size: true}\n",
         "search.strategy_options.population_size: must be an integer >= 2 (got True)"),
        ("search:\n  strategy_options: {population_size: 1}\n",
         "search.strategy_options.population_size: must be an integer >= 2 (got 1)"),
        ("search:\n  strategy_options: {sample_size: 0}\n",
         "search.strategy_options.sample_size: must be an integer >= 1 (got 0)"),
        ("search:\n  strategy_options: {population_size: 4, sample_size: 5}\n",
         "search.strategy_options.sample_size: must be at most population_size (4) (got 5)"),
        ("search:\n  strategy_options: {population_size: 4}\n",
         "search.strategy_options.sample_size: must be at most population_size (4) (10 by default)"),
        ("search:\n  strategy_options: null\n",
         "search.strategy_options: Input should be a valid dictionary (got None)"),
        ("search:\n  strategy: neat\n  strategy_options: {grow_rate: 1.5}\n",
         "search.strategy_options.grow_rate: must be a number >= 0 and <= 1 (got 1.5)"),
        ("search:\n  strategy: reinforce\n  strategy_options: {lr: 0}\n",
         "search.strategy_options.lr: must be a number > 0 (got 0)"),
        ("search:\n  strategy: bananas\n  strategy_options: {candidates: 5}\n",
         "search.strategy_options.batch: must be at most candidates (5) (10 by default)"),
        ("search:\n  strategy: tpe\n  strategy_options: {n_startup_trials: -1}\n",
         "search.strategy_options.n_startup_trials: must be an integer >= 0 (got -1)"),
        ("search:\n  strategy: tpe\n  strategy_options: {n_startup_trials: x}\n",
         "search.strategy_options.n_startup_trials: must be an integer >= 0 (got 'x')"),
        ("search:\n  strategy: tpe\n  strategy_options: {multivariate: 1}\n",
         "search.strategy_options.multivariate: must be true or false (got 1)"),
        ("search:\n  strategy: tpe\n  strategy_options: {prior_weight: yes}\n",
         "search.strategy_options.prior_weight: must be a number, or null (got True)"),
        # ranges and rules Optuna checks only when it builds a sampler, checked here without building one
        ("search:\n  strategy: nsga2\n  strategy_options: {population_size: 1}\n",
         "search.strategy_options.population_size: must be an integer >= 2 (got 1)"),
        ("search:\n  strategy: nsga2\n  strategy_options: {swapping_prob: 1.5}\n",
         "search.strategy_options.swapping_prob: must be a number >= 0 and <= 1 (got 1.5)"),
        ("search:\n  strategy: qmc\n  strategy_options: {qmc_type: lattice}\n",
         "search.strategy_options.qmc_type: Input should be 'sobol' or 'halton' (got 'lattice')"),
        ("search:\n  strategy: tpe\n  strategy_options: {group: true}\n",
         "search.strategy_options.group: may be true only when multivariate is true (got True)"),
        ("search:\n  strategy: optuna.GridSampler\n",
         "search.strategy: optuna.GridSampler cannot run here: it walks a grid it shuffles by its seed, and each "
         "trial's sampler has a seed of its own, so the trials repeat grid points and miss others; use another "
         "strategy (random, optuna_random or qmc to cover the space without a model) (got 'optuna.GridSampler')"),
        ("search:\n  strategy: optuna.BruteForceSampler\n",
         "search.strategy: optuna.BruteForceSampler cannot run here: it must see the trial being sampled and the "
         "running ones, which each trial's view hides; use another strategy (random, optuna_random or qmc to cover "
         "the space without a model) (got 'optuna.BruteForceSampler')"),
        ("search:\n  strategy: nsga2\n  strategy_options: {mutation_prob: 2.0}\n",
         "search.strategy_options.mutation_prob: must be a number >= 0 and <= 1, or null (got 2.0)"),
        ("search:\n  strategy: nsga2\n  strategy_options: {crossover_prob: -1.0}\n",
         "search.strategy_options.crossover_prob: must be a number >= 0 and <= 1 (got -1.0)"),
        ("search:\n  strategy: tpe\n  strategy_options: {weights: 3}\n",
         "search.strategy_options.weights: tpe takes a Python function or object there, which params.yaml cannot "
         "give; leave it out"),
        ("search:\n  strategy: nsga2\n  strategy_options: {constraints_func: null}\n",
         "search.strategy_options.constraints_func: nsga2 takes a Python function or object there, which "
         "params.yaml cannot give; leave it out"),
        ("search:\n  strategy: tpe\n  strategy_options: {constant_liar: true}\n",
         "search.strategy_options.constant_liar: has no effect here: each trial's sampler sees only the finished "
         "trials of earlier slots (search.lag), which is what makes parallel workers give the same trials; leave "
         "it out"),
    ],
)
def test_bad_params_give_one_line_naming_the_key_and_what_is_allowed(tmp_path, text, line):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_params(path)
    assert str(info.value) == f"{path}: {line}"


@pytest.mark.parametrize(
    "text,message",
    [
        ("search:\n  n_trial: 3\n", "unknown key search.n_trial; allowed keys here: .*n_trials"),
        ("bogus: 1\n", "unknown key bogus; allowed keys here: data, search, retrain, tracking"),
        ("data:\n  dataset: imagenet\n", "data.dataset: Input should be 'digits', 'mnist5k', .* or 'svhn'"),
        ("search:\n  strategy: evolution\n", "search.strategy: unknown strategy 'evolution'; allowed: random, "
         "local_search, regularized_evolution, mcts, neat, reinforce, bananas, gp_thompson, bohb, mo_regularized_evolution, "
         r"lemonade, ehvi, tpe, gp, qmc, optuna_random, nsga2, motpe, re \(= regularized_evolution\), "
         r"local \(= local_search\), mo_re \(= mo_regularized_evolution\), optuna.<any sampler class>"),
        ("search:\n  strategy: optuna.NoSuchSampler\n", "unknown strategy 'optuna.NoSuchSampler'"),
        ("search:\n  strategy: tpe\n  strategy_options: {n_startup: 3}\n", "search.strategy_options.n_startup: "
         r"not an option of tpe \(allowed: .*n_startup_trials.*\); options are per strategy"),
        ("search:\n  strategy: optuna.BaseGASampler\n  strategy_options: {population_size: 4}\n",
         "search.strategy: 'optuna.BaseGASampler' is an abstract base class, not a sampler; allowed: random, "),
        ("search:\n  epochs: 4\n  warmup_epochs: 4\n", r"search: warmup_epochs \(4\) must be less than epochs \(4\)"),
    ],
)
def test_bad_params_give_one_line_naming_the_key(tmp_path, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        load_params(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("search:\n  lr: 1\n", {"lr": 1.0}),  # an integer is a number
        ("search:\n  lr: 1e-3\n  weight_decay: 5E-4\n", {"lr": 0.001, "weight_decay": 0.0005}),  # YAML 1.2 floats
        ("search:\n  strategy: mcts\n  strategy_options: {exploration: 1}\n", {"strategy_options": {"exploration": 1}}),
        ("search:\n  strategy: tpe\n  strategy_options: {prior_weight: null, n_startup_trials: 0}\n",
         {"strategy_options": {"prior_weight": None, "n_startup_trials": 0}}),
    ],
)
def test_good_values_are_accepted_as_written(tmp_path, text, expected):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    search = load_params(path).search
    assert {key: getattr(search, key) for key in expected} == expected
    assert all(type(getattr(search, key)) is type(value) for key, value in expected.items())


def test_keys_merged_in_may_be_overridden(tmp_path):
    """Overriding a key merged in with `<<` is what merging is for, not a duplicate."""
    path = tmp_path / "params.yaml"
    path.write_text("search: &train {lr: 0.1, epochs: 2}\nretrain:\n  <<: *train\n  epochs: 3\n")
    retrain = load_params(path).retrain
    assert (retrain.lr, retrain.epochs) == (0.1, 3)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_option_ranges_in_strategy_signatures_match_their_constructor_checks(name):
    """The range config checks an option against (its annotation) is the one the constructor enforces, in its words."""
    for key, parameter in strategy_parameters(name).items():
        if not get_args(parameter.annotation):  # a plain type (bool): no range to check
            continue
        base, *metadata = get_args(parameter.annotation)
        for bound in (b for m in metadata for b in (m if isinstance(m, GroupedMetadata) else [m])):
            (kind,) = (f.name for f in dataclasses.fields(bound))
            limit = getattr(bound, kind)
            outside = base({"ge": limit - 1, "gt": limit, "le": limit + 1, "lt": limit}[kind])
            with pytest.raises(ValueError) as info:
                STRATEGIES[name](SPACES["nb201"], seed=0, **{key: outside})
            assert str(info.value) == f"{key} must be {allowed_values(parameter.annotation)}", (key, outside)


def test_the_registry_names_the_classes_the_search_runs():
    assert STRATEGY_NAMES == (*STRATEGIES, *OPTUNA_SAMPLERS)
    assert {name: strategy_class(name) for name in STRATEGY_NAMES} == {**STRATEGIES, **OPTUNA_SAMPLERS}


@pytest.mark.parametrize("name", sorted(NATIVE))
def test_the_registry_restates_each_native_constructor(name):
    """What params.yaml is checked against (names, types, ranges, defaults) is the constructor's own signature
    (a multi-objective strategy's ``directions`` and ``cheap`` come from the search, not from strategy_options)."""
    space, seed, *options = inspect.signature(strategy_class(name), eval_str=True).parameters.values()
    assert (space.name, seed.name) == ("space", "seed")
    if NATIVE[name].multi_objective:
        assert [p.name for p in options[:2]] == ["directions", "cheap"]
        options = options[2:]
    assert [(p.name, p.annotation, p.default) for p in options] == [
        (p.name, p.annotation, p.default) for p in strategy_parameters(name).values()]


# One breach of each rule between options a strategy declares, by (strategy, option the rule is reported on).
BREACHES = {
    ("regularized_evolution", "sample_size"): {"population_size": 4, "sample_size": 5},
    ("mo_regularized_evolution", "sample_size"): {"population_size": 4, "sample_size": 5},
    ("lemonade", "n_ac"): {"n_pc": 4, "n_ac": 5},
    ("bananas", "batch"): {"candidates": 5},
    ("bohb", "min_budget"): {"min_budget": 10.0},
    ("optuna.TPESampler", "group"): {"group": True},
}


def test_every_declared_rule_between_options_has_a_breach_tested():
    declared = {(name, rule.option) for name in NATIVE for rule in constraints(name)}
    declared |= {(f"optuna.{cls}", rule.option) for cls, rules in _OPTUNA_CONSTRAINTS.items() for rule in rules}
    assert declared == set(BREACHES)


@pytest.mark.parametrize("name,option", sorted(BREACHES))
def test_each_rule_between_options_is_one_the_constructor_enforces(name, option):
    """Validation finds the breach without building anything; the constructor refuses it too (ours in the same
    words)."""
    breach = BREACHES[name, option]
    rule = next(rule for rule in constraints(name) if rule.option == option)
    options = {**{key: p.default for key, p in strategy_parameters(name).items()}, **breach}
    assert not rule.holds(options)
    native = name in NATIVE
    with pytest.raises(ValueError) as info:
        strategy_class(name)(*[SPACES["nb201"]] * native, seed=0, **breach)
    if native:
        assert str(info.value) == f"{option} {rule.message.format(**options)}"


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_runs_on_its_own_defaults(tmp_path, name):
    """Switching strategy needs no options: params.yaml's `strategy_options: {}` is valid for each, and builds."""
    from nas.strategies import make_sampler

    path = tmp_path / "params.yaml"
    path.write_text(f"search:\n  strategy: {name}\n  strategy_options: {{}}\n")
    search = load_params(path).search
    assert make_sampler(search.strategy, SPACES[search.space], 0, search.strategy_options) is not None


@pytest.mark.parametrize("strategy,imported", [("regularized_evolution", ""), ("tpe", "optuna")])
def test_validating_params_imports_no_strategy_code(tmp_path, strategy, imported):
    """params.yaml is checked against the strategy registry alone: nothing is built, the strategies' code (and torch,
    scikit-learn) is not imported, so the prepare stage does not depend on it; Optuna only when a sampler of it is
    named."""
    path = tmp_path / "params.yaml"
    path.write_text(f"search:\n  strategy: {strategy}\n")
    probe = ("import sys; from nas.config import load_params; load_params(sys.argv[1]); "
             "print(','.join(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
             "('torch', 'sklearn', 'optuna')} | {m for m in sys.modules if m.startswith(('nas.strategies', "
             "'nas.neat', 'nas.spaces'))})))")
    out = subprocess.run([sys.executable, "-c", probe, str(path)], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == imported


def test_any_strategy_on_either_space_by_name(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("search:\n  space: macro\n  strategy: optuna.CmaEsSampler\n"
                    "  strategy_options: {n_startup_trials: 2}\n")
    assert load_params(path).search.strategy == "optuna.CmaEsSampler"
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


def test_a_warm_started_local_search_evaluates_the_whole_warm_list_before_its_first_walk() -> None:
    warm = {"zero_cost_warmup": {"pool": 50, "top_k": 7}}
    assert Params.model_validate({"search": {"strategy": "local_search", **warm}}).search.search_defaults() == {
        "initial": 7}
    assert Params.model_validate({"search": {"strategy": "local_search"}}).search.search_defaults() == {}
    assert Params.model_validate({"search": {"strategy": "regularized_evolution", **warm}}).search.search_defaults() == {}
    chosen = Params.model_validate({"search": {"strategy": "local_search", "strategy_options": {"initial": 2}, **warm}})
    assert {**chosen.search.search_defaults(), **chosen.search.strategy_options} == {"initial": 2}  # as the stage merges
