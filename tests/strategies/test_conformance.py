"""The conformance suite every strategy joins by being in the registry (the ``strategy_name`` fixture), on every
search space (the ``space`` fixture).

Scores come from a fixed synthetic function of the architecture, so the suite checks the strategy, not training.
"""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from nas.spaces import SPACES
from nas.strategies import STRATEGIES, STRATEGY_NAMES, make_sampler, make_strategy
from nas.strategies.base import unpack
from tests.spaces import corrupted

OPTIONS = {"regularized_evolution": {"population_size": 5, "sample_size": 2}, "tpe": {"n_startup_trials": 5},
           "neat": {"population_size": 8}, "bananas": {"initial": 5, "batch": 5},
           "gp_thompson": {"candidates": 200}, "ehvi": {"candidates": 200}, "gp": {"n_startup_trials": 10}}
SLOW = {"gp"}  # Gaussian-process fits take seconds per trial: one space is enough for them
# Where 60 trials cannot show a strategy using the scores, and why (the other tests still run there).
TOO_FEW_TRIALS = {("bohb", "darts"): "BOHB's model waits for 25 observations at one budget (22 decisions + 3) and "
                                     "promotions re-evaluate architectures: 60 trials are 46 random ones here"}
# Trials for the check that a strategy uses the scores, where 60 would be slow: Optuna's GPSampler refits every trial
# (60 take ~30 s; 20, its 10 random ones and 10 from the model, take 3 s and score 19.5 on average against 9.5).
TRIALS_TO_BEAT_RANDOM = {"gp": 20}


def nb201_score(arch) -> float:
    """A deterministic landscape with structure to exploit: convolutions good, 'none' bad."""
    weights = {"none": 0.0, "skip_connect": 0.3, "nor_conv_1x1": 0.6, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.2}
    return sum(weights[op] * (k + 1) for k, op in enumerate(arch.ops))


def macro_score(arch) -> float:
    """Deeper is better up to 4 layers, wide 3x3 convolutions are good, a residual sum into the last layer helps."""
    ops = {"conv": 1.0, "sep_conv": 0.8, "dil_conv": 0.5, "max_pool": 0.2, "avg_pool": 0.1, "identity": 0.0}
    value = sum(ops[layer.op] * (layer.width or 1) * (1.0 if layer.kernel == 3 else 0.5) for layer in arch.layers)
    return value - 2.0 * max(0, len(arch.layers) - 4) + (1.5 if arch.layers[-1].merge == "sum" else 0.0)


def darts_score(arch) -> float:
    """Separable convolutions good, pooling poor, deep inputs (later nodes) rewarded in the normal cell."""
    weights = {"none": 0.0, "max_pool_3x3": 0.2, "avg_pool_3x3": 0.1, "skip_connect": 0.3, "sep_conv_3x3": 1.0,
               "sep_conv_5x5": 0.9, "dil_conv_3x3": 0.6, "dil_conv_5x5": 0.5}
    return (sum(weights[op] * (1 + 0.2 * source) for op, source in arch.normal)
            + 0.5 * sum(weights[op] for op, _ in arch.reduce))


SCORES = {"nb201": nb201_score, "macro": macro_score, "darts": darts_score}


# Per space, an invalid variant of a valid architecture: an op the space does not have on the last edge or layer.
CORRUPT = {"nb201": lambda arch: corrupted(arch, ops=(*arch.ops[:-1], "conv_5x5")),
           "macro": lambda arch: corrupted(arch, layers=(*arch.layers[:-1], corrupted(arch.layers[-1], op="lstm"))),
           "darts": lambda arch: corrupted(arch, normal=(*arch.normal[:-1], ("conv_7x1_1x7", arch.normal[-1][1])))}


@pytest.fixture(params=[(s, sp) for s in STRATEGY_NAMES for sp in sorted(SPACES) if s not in SLOW or sp == "nb201"],
                ids="-".join)
def case(request) -> tuple[str, str]:
    return request.param


@pytest.fixture
def strategy_name(case) -> str:
    return case[0]


@pytest.fixture
def space_name(case) -> str:
    return case[1]


@pytest.fixture
def space(space_name):
    return SPACES[space_name]


@pytest.fixture
def score(space_name):
    return SCORES[space_name]


def _sampler(name: str, space, seed: int):
    return make_sampler(name, space, seed, OPTIONS.get(name))


def run(study: optuna.Study, space, score, until: int) -> None:
    while len(study.get_trials(states=(TrialState.COMPLETE,))) < until:
        trial = study.ask()
        study.tell(trial, score(space.suggest(trial)))


def archs(study: optuna.Study, space) -> list:
    return [space.from_params(t.params) for t in study.get_trials(states=(TrialState.COMPLETE,))]


def new_study(name: str, space, seed: int, storage=None) -> optuna.Study:
    return optuna.create_study(direction="maximize", sampler=_sampler(name, space, seed), storage=storage)


@pytest.fixture(autouse=True)
def _quiet():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_proposals_are_valid(strategy_name, space_name, space, score):
    """What the strategy's ask returns (before Optuna could fill a gap in its params) is valid and round-trips, and
    each trial's logged params decode to the architecture the trial built."""
    strategy = make_strategy(strategy_name, space, 0, OPTIONS.get(strategy_name))
    for _ in range(25):
        arch, _budget = unpack(strategy.ask())  # a multi-fidelity strategy proposes a budget too
        assert space.is_valid(arch), arch
        assert space.decode(space.encode(arch)) == arch and space.from_params(space.to_params(arch)) == arch
        assert not space.is_valid(CORRUPT[space_name](arch))
        strategy.tell(arch, score(arch))
    study, built = new_study(strategy_name, space, 0), []
    for _ in range(10):
        trial = study.ask()
        built.append(space.suggest(trial))
        study.tell(trial, score(built[-1]))
    assert archs(study, space) == built and all(space.is_valid(a) for a in built)


def test_same_seed_same_sequence_and_other_seed_differs(strategy_name, space, score):
    a, b, c = (new_study(strategy_name, space, seed) for seed in (3, 3, 4))
    for study in (a, b, c):
        run(study, space, score, 15)
    assert archs(a, space) == archs(b, space)
    assert archs(a, space) != archs(c, space)


def test_resume_after_a_kill_continues_as_without_interruption(strategy_name, space, score, tmp_path):
    uninterrupted = new_study(strategy_name, space, 11)
    run(uninterrupted, space, score, 18)

    storage = f"sqlite:///{tmp_path / 'log.db'}"
    first = optuna.create_study(direction="maximize", sampler=_sampler(strategy_name, space, 11), storage=storage,
                                study_name="s")
    run(first, space, score, 9)
    orphan = first.ask()  # the process dies mid-trial: the trial stays RUNNING
    space.suggest(orphan)
    del first

    resumed = optuna.load_study(study_name="s", storage=storage, sampler=_sampler(strategy_name, space, 11))
    resumed.tell(orphan.number, state=TrialState.FAIL)
    run(resumed, space, score, 18)
    assert archs(resumed, space) == archs(uninterrupted, space)


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_native_replay_rebuilds_the_same_state(name, space, score):
    """ask/tell after rebuilding from a log behaves exactly as the strategy that produced the log."""
    original = STRATEGIES[name](space, seed=5, **OPTIONS.get(name, {}))
    log = []
    for _ in range(12):
        arch, _budget = unpack(original.ask())
        original.tell(arch, score(arch))
        log.append((arch, score(arch)))
    rebuilt = STRATEGIES[name](space, seed=5, **OPTIONS.get(name, {}))
    rebuilt.replay(log)
    assert_same_proposals(original, rebuilt, score, 10)


def assert_same_proposals(one, other, score, n: int) -> None:
    """``one`` and ``other`` propose the same (architecture, budget) ``n`` times, each told its proposal's score."""
    for _ in range(n):
        (a, budget_a), (b, budget_b) = unpack(one.ask()), unpack(other.ask())
        assert (a, budget_a) == (b, budget_b)
        one.tell(a, score(a))
        other.tell(b, score(b))


@pytest.mark.parametrize("space_name", sorted(SPACES))
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_native_replay_tells_the_logged_architecture_not_its_own_proposal(name, space, score):
    """A log whose architectures are not what the strategy proposed (trials enqueued by hand, a warm start): the
    rebuilt strategy is in the state of one that was told those architectures after each ask."""
    rng = np.random.default_rng(7)
    log = [(arch, score(arch)) for arch in (space.sample(rng) for _ in range(12))]
    told = STRATEGIES[name](space, seed=5, **OPTIONS.get(name, {}))
    for arch, value in log:
        told.ask()
        told.tell(arch, value)
    rebuilt = STRATEGIES[name](space, seed=5, **OPTIONS.get(name, {}))
    rebuilt.replay(log)
    assert_same_proposals(told, rebuilt, score, 8)


def test_strategies_beat_nothing_on_the_synthetic_landscape(strategy_name, space_name, space, score):
    """Not a benchmark: checks the strategy uses the scores at all (it must end above the 95th percentile of random
    scores)."""
    if (strategy_name, space_name) in TOO_FEW_TRIALS:
        pytest.skip(TOO_FEW_TRIALS[(strategy_name, space_name)])
    study = new_study(strategy_name, space, 0)
    run(study, space, score, TRIALS_TO_BEAT_RANDOM.get(strategy_name, 60))
    rng = np.random.default_rng(0)
    random_scores = [score(space.sample(rng)) for _ in range(2000)]
    assert study.best_value > np.percentile(random_scores, 95)


# Strategies whose proposals do not depend on the scores, by design.
SCORE_BLIND = {"random", "optuna_random", "qmc"}
# Trials within which the proposals on two landscapes differ: NSGA-II's first generation (50) is random.
TRIALS_TO_DIVERGE = {"nsga2": 60, "gp": 20}


def test_strategies_propose_otherwise_when_the_scores_are_otherwise(strategy_name, space_name, space, score):
    """That a strategy's proposals come from the scores: with one seed, on the landscape and on its negation, the
    proposals part within 30 trials (a model that is never fitted, a random start that never ends, would not)."""
    n = TRIALS_TO_DIVERGE.get(strategy_name, 30)
    up, down = new_study(strategy_name, space, 0), new_study(strategy_name, space, 0)
    run(up, space, score, n)
    run(down, space, lambda arch: -score(arch), n)
    assert (archs(up, space) == archs(down, space)) == (strategy_name in SCORE_BLIND)


def test_tpe_with_grouped_multivariate_sampling_searches():
    """TPE's ``group`` infers the search space on the sampler that then samples it: the view for each trial must
    be made (and the trial's sampler chosen) before either."""
    space = SPACES["nb201"]
    sampler = make_sampler("tpe", space, 0, {"multivariate": True, "group": True, "n_startup_trials": 1}, lag=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    run(study, space, nb201_score, 6)
    assert len(set(archs(study, space))) > 1
