"""Bridge between native strategies and Optuna.

``StrategySampler`` makes any ask/tell ``Strategy`` an Optuna sampler, so every trial of every strategy is a trial
of one Optuna study (the single trial log) and native strategies work in any plain Optuna study too::

    sampler = StrategySampler(lambda: RegularizedEvolution(space, 0), space)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda trial: score(space.suggest(trial)), n_trials=50)

Optuna's own samplers run over the same slots and views (``nas.strategies.reseeded``).

**Slots.** Each proposal has a slot, its place in the search's sequence of proposals (the trial's user attribute
``slot``, set by the search loop; in a plain study, the number of trials told before it). The proposal for slot
``s`` is made from the trials of slots ``0 .. s - lag`` only, told in slot order, and from a seed derived from ``s``:
it is a function of the trial log, not of which process asks or when. With ``lag`` >= the number of trials run at
once, the search loop can always wait for those trials, so 1, 2 or ``lag`` workers give the same trials; a trial
whose process died leaves its slot free, and the next proposal for it is the same architecture.

A strategy is told each trial as an ``Observation`` (``observation``): completed, pruned (with the accuracy it had
when stopped and the epoch, its budget) or failed because its training diverged; a trial whose process died is not
told (its slot is proposed again). A multi-fidelity strategy's ``Proposal`` budget is kept in the trial's user
attribute ``budget``, which the search loop trains to.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container
from typing import Any

import optuna
from optuna.study.study import _ThreadLocalStudyAttribute
from optuna.trial import FrozenTrial, TrialState

from nas.strategies.base import Observation, unpack

# Set on a trial that failed because of its architecture (its training diverged), not because its process died: such
# a trial used up its proposal, so strategies learn of it, and a resumed search replays it rather than proposing anew.
FAIL_REASON_ATTR = "fail_reason"
SLOT_ATTR = "slot"
BUDGET_ATTR = "budget"
# The number of the trial whose architecture a native strategy's proposal was derived from (``Strategy.parent``).
PARENT_ATTR = "parent_trial"
# A multi-objective trial that was pruned has no values in Optuna: the ones it had when stopped are kept here.
VALUES_ATTR = "values"
# How far a trial is outside the hard constraints (search.constraints): 0 inside; what constraints_func returns.
CONSTRAINTS_ATTR = "constraint_violation"


def violation(trial: FrozenTrial) -> tuple[float]:
    """Optuna's ``constraints_func``: a value > 0 marks the trial infeasible (its architecture breaks a bound)."""
    return (float(trial.user_attrs.get(CONSTRAINTS_ATTR, 0.0)),)


def consumed(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that used up a proposal, in number order: completed, pruned, and failed with a reason."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL))
    return [t for t in trials if t.state != TrialState.FAIL or FAIL_REASON_ATTR in t.user_attrs]


def by_slot(study: optuna.Study) -> dict[int, FrozenTrial]:
    """The trials that used up a proposal, by slot (trials without a slot take their place in number order)."""
    return {int(t.user_attrs.get(SLOT_ATTR, i)): t for i, t in enumerate(consumed(study))}


def slot_of(study: optuna.Study, trial: FrozenTrial, done: dict[int, FrozenTrial]) -> int:
    # The trial handed to a sampler is a snapshot from before the loop set its slot: read the storage.
    attrs = study._storage.get_trial_user_attrs(trial._trial_id)
    return int(attrs.get(SLOT_ATTR, len(done)))


def observation(trial: FrozenTrial, arch: Any) -> Observation:
    """What a strategy is told of a finished trial."""
    feasible = trial.user_attrs.get(CONSTRAINTS_ATTR, 0.0) <= 0
    budget = trial.user_attrs.get(BUDGET_ATTR)
    if trial.state == TrialState.COMPLETE:
        return Observation(arch, tuple(trial.values), budget, "complete", feasible)
    if trial.state == TrialState.PRUNED:
        values = trial.user_attrs.get(VALUES_ATTR)
        if values is None and trial.last_step is not None:
            values = [trial.intermediate_values[trial.last_step]]
        return Observation(arch, tuple(values or ()), trial.last_step, "pruned", feasible)
    return Observation(arch, (), budget, "failed", feasible)


class _TrialsView:
    """A storage that shows only some trials of a study (the rest delegated unchanged): what a sampler may see.

    ``curveless``: pruned trials are shown without their learning curves. Optuna's TPE ranks pruned trials by their
    last intermediate value in the study's one direction, and fails in a multi-objective study ("A single direction
    cannot be retrieved"); without a curve it ranks them below every completed trial."""

    def __init__(self, storage: optuna.storages.BaseStorage, numbers: set[int], curveless: bool = False,
                 system_attrs: dict[int, dict[str, Any]] | None = None) -> None:
        self._storage, self._numbers, self._curveless = storage, numbers, curveless
        self._system_attrs = system_attrs or {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._storage, name)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = [t for t in self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
                  if t.number in self._numbers]
        trials = [_curveless(t) if self._curveless and t.state == TrialState.PRUNED else t for t in trials]
        return [with_system_attrs(t, self._system_attrs[t.number]) if t.number in self._system_attrs else t
                for t in trials]

    def get_n_trials(self, study_id: int, state: Any = None) -> int:
        return len(self.get_all_trials(study_id, deepcopy=False,
                                       states=None if state is None else (state if isinstance(state, tuple) else (state,))))


def _curveless(trial: FrozenTrial) -> FrozenTrial:
    trial = copy.copy(trial)
    trial.intermediate_values = {}
    return trial


def with_system_attrs(trial: FrozenTrial, attrs: dict[str, Any]) -> FrozenTrial:
    """A copy of ``trial`` showing ``attrs`` among its system attributes."""
    trial = copy.copy(trial)
    trial.system_attrs = {**trial.system_attrs, **attrs}
    return trial


def visible(study: optuna.Study, trials: list[FrozenTrial], curveless: bool = False,
            system_attrs: dict[int, dict[str, Any]] | None = None) -> optuna.Study:
    """``study`` as a sampler sees it when only ``trials`` have been told (``curveless``: see ``_TrialsView``;
    ``system_attrs``: by trial number, system attributes shown in place of the stored ones)."""
    view = copy.copy(study)
    view._storage = _TrialsView(study._storage, {t.number for t in trials}, curveless, system_attrs)
    view._thread_local = _ThreadLocalStudyAttribute()  # its own trial cache
    return view


class StrategySampler(optuna.samplers.BaseSampler):
    """Args:
        factory: makes the strategy afresh (the same seed each time): a proposal for a slot before the strategy's
            current one (a trial whose process died) rebuilds it and replays the log up to that slot.
        lag: the proposal for slot ``s`` is made after telling slots ``0 .. s - lag``.
    """

    def __init__(self, factory: Callable[[], Any], space: Any, lag: int = 1) -> None:
        self._factory, self.space, self.lag = factory, space, lag
        self._fresh()

    def _fresh(self) -> None:
        self.strategy = self._factory()
        self._fallback = optuna.samplers.RandomSampler(seed=int(self.strategy.rng.integers(2**31)))
        self._asked = 0  # proposals made so far: the slot of the next one
        self._told: set[int] = set()

    def infer_relative_search_space(self, study, trial) -> dict[str, optuna.distributions.BaseDistribution]:
        return self.space.distributions()

    def sample_relative(self, study, trial: FrozenTrial, search_space) -> dict[str, Any]:
        done = by_slot(study)
        slot = slot_of(study, trial, done)
        if slot < self._asked:
            self._fresh()
        while True:
            for j in sorted(done):
                if j <= self._asked - self.lag and j not in self._told:
                    self.strategy.observe(observation(done[j], self.space.from_params(done[j].params)))
                    self._told.add(j)
            self._asked += 1
            if self._asked > slot:
                arch, budget = unpack(self.strategy.ask())
                if budget is not None:
                    study._storage.set_trial_user_attr(trial._trial_id, BUDGET_ATTR, budget)
                parent = self._parent_trial(done)
                if parent is not None:
                    study._storage.set_trial_user_attr(trial._trial_id, PARENT_ATTR, parent)
                return self.space.to_params(arch)
            self.strategy.ask()  # a proposal made before (by a process that died, or this one before a rebuild)

    def _parent_trial(self, done: dict[int, FrozenTrial]) -> int | None:
        """The latest completed trial told to the strategy whose architecture its last proposal came from."""
        parent = getattr(self.strategy, "parent", None)
        if parent is None:
            return None
        for j in sorted(self._told, reverse=True):
            if done[j].state == TrialState.COMPLETE and self.space.from_params(done[j].params) == parent:
                return done[j].number
        return None

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        # Parameters outside the architecture (an objective's own hyperparameters) are sampled at random.
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)


class SamplerStrategy:
    """An Optuna sampler behind the ask/tell contract, over an in-memory study: lets the tabular harness run
    Optuna's samplers exactly as it runs native strategies, multi-objective ones (``directions``) included."""

    def __init__(self, sampler: optuna.samplers.BaseSampler, space: Any,
                 directions: tuple[str, ...] = ("maximize",)) -> None:
        self.space = space
        self.study = optuna.create_study(directions=list(directions), sampler=sampler)
        self._pending: dict[Any, list[optuna.Trial]] = {}

    def ask(self) -> Any:
        trial = self.study.ask()
        arch = self.space.suggest(trial)
        self._pending.setdefault(arch, []).append(trial)
        return arch

    def tell(self, arch: Any, score: float) -> None:
        self.study.tell(self._pending[arch].pop(), score)

    def observe(self, observation: Observation) -> None:
        trial = self._pending[observation.arch].pop()
        if not observation.feasible:
            trial.set_user_attr(CONSTRAINTS_ATTR, 1.0)  # read by the sampler's constraints_func (``violation``)
        if observation.state == "complete":
            self.study.tell(trial, list(observation.values))
        elif observation.state == "pruned" and len(self.study.directions) == 1:
            trial.report(observation.values[0], int(observation.budget or 0))
            self.study.tell(trial, state=TrialState.PRUNED)
        else:
            self.study.tell(trial, state=TrialState.PRUNED if observation.state == "pruned" else TrialState.FAIL)
