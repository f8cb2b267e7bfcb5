"""The conformance suite, part two: every strategy is told pruned and failed trials (observations, not floats), a
search with them resumes to the same sequence, and every multi-objective strategy does all of it on two objectives.

Every registered strategy, on the NB201 space.
"""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nas.spaces import SPACES
from nas.strategies import STRATEGY_NAMES, make_sampler
from nas.strategies.optuna_sampler import FAIL_REASON_ATTR, VALUES_ATTR, by_slot
from nas.strategy_registry import is_multi_objective
from tests.strategies.test_conformance import OPTIONS, _quiet, nb201_score  # noqa: F401

# On the NB201 space only: what is checked here is how observations reach the strategy, which the space does not
# change (tests/strategies/test_conformance.py runs every strategy on every space).
space = SPACES["nb201"]
score = nb201_score

TWO = ("maximize", "minimize")
# Strategies that model accuracy alone and need the other objectives known before training (the search passes
# them as ``cheap``); the others run here without, as they do on objectives that must be measured (latency).
NEEDS_CHEAP = {"ehvi"}


def size(space, arch) -> float:
    """A second objective that conflicts with the score: the longer the encoding, the larger."""
    return float(len(space.encode(arch)))


def _study(name: str, space, seed: int, directions=("maximize",), storage=None, study_name=None) -> optuna.Study:
    cheap = (lambda arch: (None, size(space, arch))) if name in NEEDS_CHEAP and len(directions) > 1 else None
    sampler = make_sampler(name, space, seed, OPTIONS.get(name), directions=directions, cheap=cheap)
    return optuna.create_study(directions=list(directions), sampler=sampler, storage=storage, study_name=study_name,
                               load_if_exists=True)


def run_mixed(study: optuna.Study, space, score, until: int) -> None:
    """Every third trial is pruned after one epoch, every seventh fails with a reason; the rest complete."""
    multi = len(study.directions) > 1
    while len(by_slot(study)) < until:
        trial = study.ask()
        arch = space.suggest(trial)
        values = [score(arch), size(space, arch)] if multi else [score(arch)]
        k = len(by_slot(study))
        if k % 3 == 2:
            study._storage.set_trial_intermediate_value(trial._trial_id, 1, values[0] / 2)
            trial.set_user_attr(VALUES_ATTR, [values[0] / 2, *values[1:]])
            study.tell(trial, state=TrialState.PRUNED)
        elif k % 7 == 6:
            trial.set_user_attr(FAIL_REASON_ATTR, "training diverged at epoch 1 (train_loss nan)")
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, values)


def sequence(study: optuna.Study) -> list:
    return [(t.params, t.state) for t in by_slot(study).values()]


def _directions(strategy_name):
    return [("maximize",), *([TWO] if is_multi_objective(strategy_name) else [])]


@pytest.mark.parametrize("strategy_name", STRATEGY_NAMES)
def test_pruned_and_failed_trials_are_told_and_a_resume_replays_them(strategy_name, tmp_path):
    for directions in _directions(strategy_name):
        uninterrupted = _study(strategy_name, space, 11, directions)
        run_mixed(uninterrupted, space, score, 18)
        assert {t.state for t in uninterrupted.get_trials()} == {TrialState.COMPLETE, TrialState.PRUNED,
                                                                  TrialState.FAIL}

        storage = f"sqlite:///{tmp_path / f'log{len(directions)}.db'}"
        first = _study(strategy_name, space, 11, directions, storage, "s")
        run_mixed(first, space, score, 10)
        orphan = first.ask()  # the process dies mid-trial: the trial stays RUNNING, and is failed without a reason
        space.suggest(orphan)
        del first
        resumed = _study(strategy_name, space, 11, directions, storage, "s")
        resumed.tell(orphan.number, state=TrialState.FAIL)
        run_mixed(resumed, space, score, 18)
        assert sequence(resumed) == sequence(uninterrupted), directions


@pytest.mark.parametrize("strategy_name", [n for n in STRATEGY_NAMES if is_multi_objective(n)])
def test_multi_objective_strategies_same_seed_same_sequence_and_valid(strategy_name):
    a, b, c = (_study(strategy_name, space, seed, TWO) for seed in (3, 3, 4))
    for study in (a, b, c):
        run_mixed(study, space, score, 15)
    assert sequence(a) == sequence(b) and sequence(a) != sequence(c)
    assert all(space.is_valid(space.from_params(t.params)) for t in a.get_trials())
