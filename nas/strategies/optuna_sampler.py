"""Bridge between native strategies and Optuna.

``StrategySampler`` makes any ask/tell ``Strategy`` an Optuna sampler, so every trial of every strategy is a trial
of one Optuna study (the single trial log) and native strategies work in any plain Optuna study too::

    study = optuna.create_study(direction="maximize", sampler=StrategySampler(RegularizedEvolution(space, 0), space))
    study.optimize(lambda trial: score(space.suggest(trial)), n_trials=50)

The sampler reads the study's completed trials before each proposal; told trials it did not propose itself (a
restart after a crash, another worker) are replayed through the strategy, which rebuilds its state from the log.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState


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
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if trial.number in self._told:
                continue
            arch = self.space.from_params(trial.params)
            if trial.number in self._proposed:
                self.strategy.tell(arch, trial.value)
            else:
                self.strategy.replay([(arch, trial.value)])
            self._told.add(trial.number)


class ReseededSampler(optuna.samplers.BaseSampler):
    """Runs an Optuna sampler with a fresh seed per trial, derived from the base seed and the number of completed
    trials, so a study resumed after a crash gets the same proposals as one that never stopped (Optuna's samplers
    otherwise keep one random stream per process, which a restart resets).

    Samplers read the study's history on every call, so a new instance per trial loses nothing else.
    """

    def __init__(self, factory: Callable[..., optuna.samplers.BaseSampler], seed: int, **options: Any) -> None:
        self._factory, self._seed, self._options = factory, seed, options
        self._inner = factory(seed=seed, **options)

    def _reseed(self, study: optuna.Study) -> None:
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        seed = int(np.random.SeedSequence([self._seed, done]).generate_state(1)[0])
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
