"""Optuna's own samplers over the search's slots (``nas.strategies.optuna_sampler``): a sampler made afresh for each
trial, seeded by the trial's slot, shown only the trials of slots ``0 .. slot - lag``.

Samplers read the study's history on every call, so a new instance per trial loses nothing else, and the proposal
is a function of the trial log: a study resumed after a crash, or run by several workers, gets the same proposals
as one that never stopped (Optuna's samplers otherwise keep one random stream per process, which a restart resets).

A genetic sampler's (NSGA-II's, NSGA-III's) generations are counted in the view too. Optuna puts a trial in the
latest generation until that generation has ``population_size`` completed trials, counting the trials its sampler
sees: behind a view that hides the last ``lag`` - 1 trials, a generation grew to P + lag - 1 trials whose last
lag - 1 were never parents (they were hidden when the next generation's parents were chosen, once and for good).
Here the k-th completed trial, in slot order, is a member of generation k // P, and a trial is bred from the
parents of generation c // P, c the completed trials its view holds: the latest generation it sees whole. With
``lag`` 1 these are Optuna's own generations; with more, a generation's first children come from the parents of
the one before while its last members finish.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.strategies.optuna_sampler import by_slot, slot_of, visible, with_system_attrs


class ReseededSampler(optuna.samplers.BaseSampler):
    """Runs an Optuna sampler afresh for each trial (module doc). The trial after one that failed because of its
    architecture is sampled at random instead."""

    def __init__(self, factory: Callable[..., optuna.samplers.BaseSampler], seed: int, lag: int = 1,
                 **options: Any) -> None:
        self._factory, self._seed, self.lag, self._options = factory, seed, lag, options
        self._inner = factory(seed=seed, **options)
        genetic = isinstance(self._inner, optuna.samplers.BaseGASampler) and self._inner.population_size
        self._generations = (self._inner.population_size, self._inner._get_generation_key()) if genetic else None
        # (trial id, the view, the trial as the sampler is shown it) of the trial being sampled
        self._prepared: tuple[int, optuna.Study, FrozenTrial] | None = None

    def _view(self, study: optuna.Study, trial: FrozenTrial) -> optuna.Study:
        if self._prepared is not None and self._prepared[0] == trial._trial_id:
            return self._prepared[1]
        done = by_slot(study)
        slot = slot_of(study, trial, done)
        seen = [done[j] for j in sorted(done) if j <= slot - self.lag]
        seed = int(np.random.SeedSequence([self._seed, slot]).generate_state(1)[0])
        if seen and seen[-1].state == TrialState.FAIL:
            # Optuna's samplers do not learn from failed trials, so after one they would propose the same
            # architecture again (TPE nearly always does): the trial after a failure is sampled at random.
            self._inner = optuna.samplers.RandomSampler(seed=seed)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                self._inner = self._factory(seed=seed, **self._options)
        members, shown = {}, trial
        if self._generations is not None:
            size, key = self._generations
            completed = [t for t in seen if t.state == TrialState.COMPLETE]
            members = {t.number: {key: k // size} for k, t in enumerate(completed)}
            bred = len(completed) // size
            study._storage.set_trial_system_attr(trial._trial_id, key, bred)  # what the dashboard shows
            shown = with_system_attrs(trial, {key: bred})
        view = visible(study, seen, curveless=len(study.directions) > 1, system_attrs=members)
        self._inner.before_trial(view, shown)
        self._prepared = (trial._trial_id, view, shown)
        return view

    # Each call makes the trial's view first: it is what replaces ``_inner`` with this trial's sampler, and one
    # sampler must both infer the relative search space and sample it (TPE's ``group`` keeps it between the two).
    def infer_relative_search_space(self, study, trial):
        view = self._view(study, trial)
        return self._inner.infer_relative_search_space(view, self._prepared[2])

    def sample_relative(self, study, trial, search_space):
        view = self._view(study, trial)
        return self._inner.sample_relative(view, self._prepared[2], search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        view = self._view(study, trial)
        return self._inner.sample_independent(view, self._prepared[2], param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)


__all__ = ["ReseededSampler"]
