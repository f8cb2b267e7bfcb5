"""Early stopping in the search loop: pruned trials are PRUNED (never failures), count as trials, say why, and are
pruned the same way whatever the number of workers and after a resume."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.estimation import Result
from nas.search import open_study, run_search
from nas.search.pruners import COSTS_ATTR, Pruning
from nas.spaces import SPACES
from nas.strategies import make_sampler
from nas.strategies.optuna_sampler import SLOT_ATTR, VALUES_ATTR, by_slot

space = SPACES["nb201"]
ACCURACY = (("val_accuracy", "maximize"),)


def quality(arch) -> float:
    weights = {"none": 0.0, "skip_connect": 0.3, "nor_conv_1x1": 0.6, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.2}
    return sum(weights[op] for op in arch.ops) / 6


def curve_objective(number, arch, on_epoch_end, budget=None) -> Result:
    """A learning curve that rises towards the architecture's quality: the better cell is ahead at every epoch."""
    epochs = budget or 9
    curve = [quality(arch) * (1 - 0.5 ** (e + 1)) for e in range(epochs)]
    for epoch, value in enumerate(curve):
        on_epoch_end(epoch, {"val_accuracy": value, "train_loss": 1 - value})
    return Result(curve[-1], tuple(curve), tuple(1 - v for v in curve), 100, 0.01)


def _search(storage: str, kind: str, n: int, *, workers: int = 1, lag: int = 1, name: str = "s",
            strategy: str = "random") -> tuple[optuna.Study, list[str]]:
    study = open_study(storage, name, make_sampler(strategy, space, 0, lag=lag), {})
    lines: list[str] = []
    run_search(study, space, curve_objective, n, lines.append, workers=workers, lag=lag,
               task={"pruning": Pruning(kind, 1, 9, 3, ACCURACY, lag)})
    return study, lines


@pytest.mark.parametrize("kind", ["median", "successive_halving", "hyperband"])
def test_pruned_trials_are_pruned_with_their_epoch_and_reason_and_the_search_goes_on(kind, tmp_path):
    study, lines = _search(f"sqlite:///{tmp_path / 'o.db'}", kind, 20)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert pruned and complete and len(pruned) + len(complete) == 20  # pruned trials count towards n_trials
    assert not study.get_trials(states=(TrialState.FAIL,))
    for trial in pruned:
        epoch = trial.user_attrs["pruned_at_epoch"]
        assert 1 <= epoch < 9 and trial.last_step == epoch and sorted(trial.intermediate_values) == [*range(1, epoch + 1)]
        assert trial.user_attrs[VALUES_ATTR] == [trial.intermediate_values[epoch]]
        assert str(epoch) in trial.user_attrs["prune_reason"]
    assert all(len(t.intermediate_values) == 9 for t in complete)
    assert sum("PRUNED at epoch" in line for line in lines) == len(pruned) and "trial 20/20" in lines[-1]
    reasons = " ".join(t.user_attrs["prune_reason"] for t in pruned)
    assert {"median": "below the median", "successive_halving": "top 1/3",
            "hyperband": "bracket"}[kind] in reasons
    # Pruning keeps the better architectures: the completed ones are better on average than the pruned.
    def mean(trials):
        return sum(quality(space.from_params(t.params)) for t in trials) / len(trials)

    assert mean(complete) > mean(pruned)


@pytest.mark.parametrize("kind", ["successive_halving", "hyperband"])
def test_the_same_trials_are_pruned_with_one_or_two_workers_and_after_a_resume(kind, tmp_path):
    """Pruning is a function of the trial log (nas.search.pruners): workers and a kill change nothing."""
    def outcome(study):
        return [(t.params, t.state, t.user_attrs.get("pruned_at_epoch")) for t in by_slot(study).values()]

    one, _ = _search(f"sqlite:///{tmp_path / 'one.db'}", kind, 18, lag=2, strategy="regularized_evolution")
    two, _ = _search(f"sqlite:///{tmp_path / 'two.db'}", kind, 18, workers=2, lag=2, strategy="regularized_evolution")
    assert outcome(one) == outcome(two)
    assert any(t.state == TrialState.PRUNED for t in one.get_trials())

    # Killed after 8 trials, in the middle of one that had passed a rung: the restart fails it (it is lost) and runs
    # its slot again; the lost trial's rung records must not count.
    storage = f"sqlite:///{tmp_path / 'killed.db'}"
    first, _ = _search(storage, kind, 8, lag=2, strategy="regularized_evolution")
    orphan = first.ask()
    orphan.set_user_attr(SLOT_ATTR, 8)
    space.suggest(orphan)
    orphan.report(0.9, 1)
    first._storage.set_trial_system_attr(orphan._trial_id, "completed_rung_0", 0.9)
    first.tell(orphan.number, state=TrialState.FAIL)
    resumed, _ = _search(storage, kind, 18, lag=2, strategy="regularized_evolution")
    assert outcome(resumed) == outcome(one)


def test_a_multi_objective_search_prunes_over_pareto_ranks_and_skips_what_breaks_a_bound(tmp_path):
    objectives = (("val_accuracy", "maximize"), ("params", "minimize"))
    measured = []

    def measure(arch):
        measured.append(arch)
        return {"params": 1000.0 * sum(op.startswith("nor_conv") for op in arch.ops)}

    trained = []

    def objective(number, arch, on_epoch_end, budget=None):
        trained.append(arch)
        return curve_objective(number, arch, on_epoch_end, budget)

    study = open_study(f"sqlite:///{tmp_path / 'o.db'}", "mo", make_sampler(
        "nsga2", space, 0, {"population_size": 6}, directions=("maximize", "minimize")), {},
        dict(objectives))
    lines = []
    run_search(study, space, objective, 24, lines.append, task={
        "objectives": objectives, "constraints": (("params", 4000.0),), "measure": measure,
        "pruning": Pruning("successive_halving", 1, 9, 3, objectives)})
    trials = study.get_trials()
    assert len(measured) == 24 and all(COSTS_ATTR in t.user_attrs for t in trials)
    infeasible = [t for t in trials if "infeasible" in t.user_attrs]
    assert infeasible and all(t.user_attrs["costs"]["params"] > 4000 for t in infeasible)
    assert len(trained) == 24 - len(infeasible)  # what breaks a bound known before training is not trained
    assert all(t.values[0] == 0.0 and not t.intermediate_values for t in infeasible)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned, "successive halving over Pareto ranks pruned nothing"
    for trial in pruned:
        epoch = trial.user_attrs["pruned_at_epoch"]
        assert epoch in (1, 3) and "Pareto rank" in trial.user_attrs["prune_reason"]
        assert trial.user_attrs[VALUES_ATTR] == [trial.intermediate_values[epoch], trial.user_attrs["costs"]["params"]]
    complete = [t for t in study.get_trials(states=(TrialState.COMPLETE,)) if "infeasible" not in t.user_attrs]
    assert all(len(t.values) == 2 and t.values[1] <= 4000 for t in complete)
    assert any("params=" in line for line in lines) and any("not trained: params" in line for line in lines)


def test_bohb_trials_train_for_the_budget_bohb_proposes(tmp_path):
    seen = []

    def objective(number, arch, on_epoch_end, budget=None):
        seen.append(budget)
        return curve_objective(number, arch, on_epoch_end, budget)

    study = open_study(f"sqlite:///{tmp_path / 'o.db'}", "bohb", make_sampler(
        "bohb", space, 0, {"min_budget": 1.0, "max_budget": 9.0, "eta": 3.0}), {})
    lines = []
    run_search(study, space, objective, 13, lines.append)
    trials = study.get_trials()
    # Hyperband's first bracket: 9 architectures for 1 epoch, the best 3 for 3, the best one for 9.
    assert seen == [max(1, round(t.user_attrs["budget"])) for t in trials] == [1] * 9 + [3] * 3 + [9]
    assert [len(t.intermediate_values) for t in trials] == seen
    assert "(9 epochs)" in lines[-1]


def test_the_best_so_far_of_a_bohb_search_is_the_most_accurate_at_the_largest_budget(tmp_path):
    """As pareto.best_of picks what is retrained: a 1-epoch score is no match for a 9-epoch one, even if higher."""
    def objective(number, arch, on_epoch_end, budget=None):
        value = 0.9 if budget == 1 else 0.8
        on_epoch_end(0, {"val_accuracy": value, "train_loss": 0.1})
        return Result(value, (value,), (0.1,), 100, 0.01)

    study = open_study(f"sqlite:///{tmp_path / 'o.db'}", "bohb", make_sampler(
        "bohb", space, 0, {"min_budget": 1.0, "max_budget": 9.0, "eta": 3.0}), {})
    lines = []
    run_search(study, space, objective, 10, lines.append)
    assert "best=0.9000" in lines[8] and "(3 epochs)" in lines[9] and "best=0.8000" in lines[9]
