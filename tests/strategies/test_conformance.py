"""The conformance suite every strategy joins by being in the registry (the ``strategy_name`` fixture).

Scores come from a fixed synthetic function of the architecture, so the suite checks the strategy, not training.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from nas.spaces import SPACES
from nas.strategies import STRATEGIES, STRATEGY_NAMES, make_sampler

space = SPACES["nb201"]
OPTIONS = {"regularized_evolution": {"population_size": 5, "sample_size": 2}, "tpe": {"n_startup_trials": 5}}


def score(arch) -> float:
    """A deterministic landscape with structure to exploit: convolutions good, 'none' bad."""
    weights = {"none": 0.0, "skip_connect": 0.3, "nor_conv_1x1": 0.6, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.2}
    return sum(weights[op] * (k + 1) for k, op in enumerate(arch.ops))


@pytest.fixture(params=STRATEGY_NAMES)
def strategy_name(request) -> str:
    return request.param


def _sampler(name: str, seed: int):
    return make_sampler(name, space, seed, OPTIONS.get(name))


def run(study: optuna.Study, until: int) -> None:
    while len(study.get_trials(states=(TrialState.COMPLETE,))) < until:
        trial = study.ask()
        study.tell(trial, score(space.suggest(trial)))


def archs(study: optuna.Study) -> list:
    return [space.from_params(t.params) for t in study.get_trials(states=(TrialState.COMPLETE,))]


def new_study(name: str, seed: int, storage=None) -> optuna.Study:
    return optuna.create_study(direction="maximize", sampler=_sampler(name, seed), storage=storage)


@pytest.fixture(autouse=True)
def _quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_proposals_are_valid(strategy_name):
    study = new_study(strategy_name, 0)
    run(study, 25)
    assert all(space.is_valid(a) for a in archs(study))


def test_same_seed_same_sequence_and_other_seed_differs(strategy_name):
    a, b, c = new_study(strategy_name, 3), new_study(strategy_name, 3), new_study(strategy_name, 4)
    for study in (a, b, c):
        run(study, 15)
    assert archs(a) == archs(b)
    assert archs(a) != archs(c)


def test_resume_after_a_kill_continues_as_without_interruption(strategy_name, tmp_path):
    uninterrupted = new_study(strategy_name, 11)
    run(uninterrupted, 18)

    storage = f"sqlite:///{tmp_path / 'log.db'}"
    first = optuna.create_study(direction="maximize", sampler=_sampler(strategy_name, 11), storage=storage,
                                study_name="s")
    run(first, 9)
    orphan = first.ask()  # the process dies mid-trial: the trial stays RUNNING
    space.suggest(orphan)
    del first

    resumed = optuna.load_study(study_name="s", storage=storage, sampler=_sampler(strategy_name, 11))
    resumed.tell(orphan.number, state=TrialState.FAIL)
    run(resumed, 18)
    assert archs(resumed) == archs(uninterrupted)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_native_replay_rebuilds_the_same_state(name):
    """ask/tell after rebuilding from a log behaves exactly as the strategy that produced the log."""
    original = STRATEGIES[name](space, seed=5, **OPTIONS.get(name, {}))
    log = []
    for _ in range(12):
        arch = original.ask()
        original.tell(arch, score(arch))
        log.append((arch, score(arch)))
    rebuilt = STRATEGIES[name](space, seed=5, **OPTIONS.get(name, {}))
    rebuilt.replay(log)
    for _ in range(10):
        a, b = original.ask(), rebuilt.ask()
        assert a == b
        original.tell(a, score(a))
        rebuilt.tell(b, score(b))


def test_strategies_beat_nothing_on_the_synthetic_landscape(strategy_name):
    """Not a benchmark: checks the strategy uses the scores at all (it must end above the median random score)."""
    study = new_study(strategy_name, 0)
    run(study, 60)
    rng = np.random.default_rng(0)
    random_scores = [score(space.sample(rng)) for _ in range(2000)]
    assert study.best_value > np.percentile(random_scores, 95)
