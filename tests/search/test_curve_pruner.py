"""The curve pruner (Domhan et al. 2015) in the search loop: a trial whose extrapolated curve is unlikely to beat the
best completed trial is PRUNED with the probability in its reason, and the search goes on."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.config import Params
from nas.estimation import Result
from nas.search import open_study, run_search
from nas.search.pruners import Pruning
from nas.search.stage import search
from nas.spaces import SPACES
from nas.strategies import make_sampler
from nas.strategies.optuna_sampler import by_slot

space = SPACES["nb201"]
ACCURACY = (("val_accuracy", "maximize"),)
EPOCHS = 9


def quality(arch) -> float:
    weights = {"none": 0.0, "skip_connect": 0.3, "nor_conv_1x1": 0.6, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.2}
    return 0.5 + 0.45 * sum(weights[op] for op in arch.ops) / 6


def pow3_objective(number, arch, on_epoch_end, budget=None) -> Result:
    """A pow3 learning curve (the paper's commonest shape) rising towards the architecture's quality."""
    curve = [quality(arch) - 0.4 * (e + 1) ** -0.7 for e in range(budget or EPOCHS)]
    for epoch, value in enumerate(curve):
        on_epoch_end(epoch, {"val_accuracy": value, "train_loss": 1 - value})
    return Result(curve[-1], tuple(curve), tuple(1 - v for v in curve), 100, 0.01)


def test_a_trial_unlikely_to_beat_the_best_is_pruned_with_its_probability_and_the_search_goes_on(tmp_path):
    study = open_study(f"sqlite:///{tmp_path / 'o.db'}", "curve", make_sampler("random", space, 0), {})
    lines: list[str] = []
    run_search(study, space, pow3_objective, 10, lines.append, task={"pruning": Pruning("curve", 1, EPOCHS, 3, ACCURACY)})
    trials = list(by_slot(study).values())
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and len(trials) == 10 and "trial 10/10" in lines[-1]
    assert trials[0].state == TrialState.COMPLETE  # no incumbent yet: the first trial goes on
    assert trials.index(pruned[0]) < 5  # pruning began early and every later slot still ran: the search went on
    for trial in pruned:
        epoch = trial.user_attrs["pruned_at_epoch"]
        assert 3 <= epoch < EPOCHS  # three points at least: the fewest the curve models fit
        before = [t for t in trials[: trials.index(trial)] if t.state == TrialState.COMPLETE]
        incumbent = max(t.values[0] for t in before)
        reason = trial.user_attrs["prune_reason"]
        assert f"> {incumbent:.4f}" in reason and "P(val_accuracy at epoch 9" in reason and "±" in reason
        probability = float(reason.split(") = ")[1].split(" <")[0])
        assert probability < 0.05
        # Right to stop: had it trained on, it would not have beaten the best trial it was compared with.
        arch = space.from_params(trial.params)
        assert pow3_objective(0, arch, lambda *_: None).val_accuracy < incumbent


def test_curve_pruning_in_the_search_stage_on_digits(prepared_digits, mlflow_uri, tmp_path):
    """A real search on digits: real training, a SQLite study, MLflow; the architectures that learn slowest stop."""
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    params = Params.model_validate({
        "data": {"out": str(prepared_digits)},
        "search": {"strategy": "random", "pruner": "curve", "min_epochs": 3, "max_epochs": 6, "n_trials": 4,
                   "lag": 1, "channels": 4, "batch_size": 256, "storage": storage, "seed": 1},
    })
    lines: list[str] = []
    summary = search(params, lines.append)
    study = optuna.load_study(study_name=summary["study_name"], storage=storage)
    trials = list(by_slot(study).values())
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(trials) == 4 and pruned, "the curve pruner stopped no trial"
    assert trials.index(pruned[0]) < 3  # and the trials after it still ran
    for trial in pruned:
        epoch = trial.user_attrs["pruned_at_epoch"]
        assert 3 <= epoch < 6 and sum(f"PRUNED at epoch {epoch}" in line for line in lines) >= 1
        reason = trial.user_attrs["prune_reason"]
        incumbent = max(t.values[0] for t in trials[: trials.index(trial)] if t.state == TrialState.COMPLETE)
        assert f"P(val_accuracy at epoch 6 > {incumbent:.4f}" in reason
        assert float(reason.split(") = ")[1].split(" <")[0]) < 0.05
    assert summary["best"]["val_accuracy"] == pytest.approx(max(t.values[0] for t in trials if t.values))
