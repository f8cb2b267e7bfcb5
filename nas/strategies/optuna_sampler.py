"""Bridge between native strategies and Optuna.

``StrategySampler`` makes any ask/tell ``Strategy`` an Optuna sampler, so every trial of every strategy is a trial
of one Optuna study (the single trial log) and native strategies work in any plain Optuna study too::

    study = optuna.create_study(direction="maximize", sampler=StrategySampler(RegularizedEvolution(space, 0), space))
    study.optimize(lambda trial: score(space.suggest(trial)), n_trials=50)

The sampler reads the study's completed trials before each proposal (and the trials that failed because their training
diverged, told as the lowest score); told trials it did not propose itself (a restart after a crash, another worker)
are replayed through the strategy, which rebuilds its state from the log.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

# Set on a trial that failed because of its architecture (its training diverged), not because its process died: such
# a trial used up its proposal, so strategies learn of it, and a resumed search replays it rather than proposing anew.
FAIL_REASON_ATTR = "fail_reason"
# What a strategy is told for such a trial: the lowest accuracy there is.
FAILED_SCORE = 0.0


def consumed(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that used up a proposal, in number order: completed ones and those failed with a reason."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    return [t for t in trials if t.state == TrialState.COMPLETE or FAIL_REASON_ATTR in t.user_attrs]


def score_of(trial: FrozenTrial) -> float:
    return trial.value if trial.state == TrialState.COMPLETE else FAILED_SCORE


class StrategySampler(optuna.samplers.BaseSampler):
    def __init__(self, strategy: Any, space: Any) -> None:
        self.strategy = strategy
        self.space = space
        self._proposed: dict[int, Any] = {}
        self._told: set[int] = set()
        self._fallback = optuna.samplers.RandomSampler(seed=int(strategy.rng.integers(2**31)))

    def infer_relative_search_space(self, study, trial) -> dict[str, optuna.distributions.BaseDistribution]:
        return self.space.distributions()

    def sample_relative(self, study, trial: FrozenTrial, search_space) -> dict[str, Any]:
        self._sync(study)
        arch = self.strategy.ask()
        self._proposed[trial.number] = arch
        return self.space.to_params(arch)

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        # Parameters outside the architecture (an objective's own hyperparameters) are sampled at random.
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def _sync(self, study: optuna.Study) -> None:
        for trial in consumed(study):
            if trial.number in self._told:
                continue
            arch = self.space.from_params(trial.params)
            if trial.number in self._proposed:
                self.strategy.tell(arch, score_of(trial))
            else:
                self.strategy.replay([(arch, score_of(trial))])
            self._told.add(trial.number)


class ReseededSampler(optuna.samplers.BaseSampler):
    """Runs an Optuna sampler with a fresh seed per trial, derived from the base seed and the number of trials that
    used up a proposal (completed, or failed with a reason), so a study resumed after a crash gets the same
    proposals as one that never stopped (Optuna's samplers otherwise keep one random stream per process, which a
    restart resets).

    Samplers read the study's history on every call, so a new instance per trial loses nothing else. The trial
    after one that failed because of its architecture is sampled at random instead (see ``_reseed``).
    """

    def __init__(self, factory: Callable[..., optuna.samplers.BaseSampler], seed: int, **options: Any) -> None:
        self._factory, self._seed, self._options = factory, seed, options
        self._inner = factory(seed=seed, **options)

    def _reseed(self, study: optuna.Study) -> None:
        done = consumed(study)
        seed = int(np.random.SeedSequence([self._seed, len(done)]).generate_state(1)[0])
        if done and done[-1].state == TrialState.FAIL:
            # Optuna's samplers do not learn from failed trials, so after one they would propose the same
            # architecture again (TPE nearly always does): the trial after a failure is sampled at random.
            self._inner = optuna.samplers.RandomSampler(seed=seed)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._inner = self._factory(seed=seed, **self._options)

    def before_trial(self, study, trial) -> None:
        self._reseed(study)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)


class SamplerStrategy:
    """An Optuna sampler behind the ask/tell contract, over an in-memory study: lets the tabular harness run
    Optuna's samplers exactly as it runs native strategies."""

    def __init__(self, sampler: optuna.samplers.BaseSampler, space: Any) -> None:
        self.space = space
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self._pending: dict[Any, list[optuna.Trial]] = {}

    def ask(self) -> Any:
        trial = self.study.ask()
        arch = self.space.suggest(trial)
        self._pending.setdefault(arch, []).append(trial)
        return arch

    def tell(self, arch: Any, score: float) -> None:
        self.study.tell(self._pending[arch].pop(), score)
