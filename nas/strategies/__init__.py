"""Search strategies by name.

Native strategies (ask/tell, ``nas.strategies.base.Strategy``) and Optuna's samplers are both used through an Optuna
sampler, so the pipeline drives every strategy the same way and the Optuna study is the one trial log.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Hashable, Sequence
from typing import Any

import optuna

from nas.strategies.bananas import BANANAS
from nas.strategies.base import MultiObjectiveStrategy, Strategy
from nas.strategies.bohb import BOHB
from nas.strategies.ehvi import EHVI
from nas.strategies.gp_thompson import GPThompson
from nas.strategies.lemonade import LEMONADE
from nas.strategies.local_search import LocalSearch
from nas.strategies.mcts import MCTS
from nas.strategies.mo_regularized_evolution import MORegularizedEvolution
from nas.strategies.neat import NEAT
from nas.strategies.optuna_sampler import SamplerStrategy, StrategySampler, violation
from nas.strategies.random_search import RandomSearch
from nas.strategies.regularized_evolution import RegularizedEvolution
from nas.strategies.reinforce import REINFORCE
from nas.strategies.reseeded import ReseededSampler
from nas.strategies.warmup import WarmStarted
from nas.strategy_registry import (
    _DEFAULT_OPTIONS,
    ALIASES,
    STRATEGY_NAMES,
    resolve,
    strategy_parameters,
)

STRATEGIES: dict[str, type[Strategy]] = {
    "random": RandomSearch,
    "local_search": LocalSearch,
    "regularized_evolution": RegularizedEvolution,
    "mcts": MCTS,
    "neat": NEAT,
    "reinforce": REINFORCE,
    "bananas": BANANAS,
    "gp_thompson": GPThompson,
    "bohb": BOHB,
    "mo_regularized_evolution": MORegularizedEvolution,
    "lemonade": LEMONADE,
    "ehvi": EHVI,
}
# Optuna's samplers under short names; any other sampler class of ``optuna.samplers`` is reached as
# ``optuna.<ClassName>`` (e.g. ``optuna.BruteForceSampler``), its keyword arguments from ``strategy_options``.
OPTUNA_SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
    "optuna_random": optuna.samplers.RandomSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
    "motpe": optuna.samplers.TPESampler,  # Optuna >= 4 runs MOTPE as TPE on a multi-objective study
}


def _optuna_sampler(name: str) -> type[optuna.samplers.BaseSampler] | None:
    if name in OPTUNA_SAMPLERS:
        return OPTUNA_SAMPLERS[name]
    cls = getattr(optuna.samplers, name.removeprefix("optuna."), None) if name.startswith("optuna.") else None
    return cls if isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler) else None


def _objective_options(cls: type, directions: tuple[str, ...], cheap: Any, constrained: bool) -> dict[str, Any]:
    """What a strategy class needs to know of the study's objectives: ``directions`` and ``cheap`` for a
    multi-objective native one; for an Optuna sampler that takes it, the hard constraints (``violation``) when the
    search has any (without, Optuna's samplers would warn of, and GPSampler refuse, trials without their values)."""
    if isinstance(cls, type) and issubclass(cls, MultiObjectiveStrategy):
        return {"directions": tuple(directions), "cheap": cheap}
    if constrained and "constraints_func" in inspect.signature(cls).parameters:
        return {"constraints_func": violation}
    return {}


def make_sampler(name: str, space: Any, seed: int, options: dict[str, Any] | None = None, lag: int = 1,
                 directions: tuple[str, ...] = ("maximize",), cheap: Any = None,
                 constrained: bool = False, warm: Sequence[Hashable] = ()) -> optuna.samplers.BaseSampler:
    """The Optuna sampler that runs strategy ``name`` over ``space`` (raises ValueError on bad names or options);
    ``lag``: the proposal for slot ``s`` sees the trials of slots ``0 .. s - lag`` (``nas.strategies.optuna_sampler``);
    ``directions``: the study's, one per objective; ``cheap``: see ``MultiObjectiveStrategy``; ``constrained``: the
    search has hard constraints (``search.constraints``); ``warm``: architectures the first proposals are
    (``nas.strategies.warmup``; native strategies only)."""
    name = resolve(name)
    options = {**_DEFAULT_OPTIONS.get(name, {}), **(options or {})}
    if name in STRATEGIES:
        cls = STRATEGIES[name]
        options = {**_objective_options(cls, directions, cheap, constrained), **options}
        if warm:
            return StrategySampler(lambda: WarmStarted(cls(space, seed=seed, **options), warm), space, lag)
        return StrategySampler(lambda: cls(space, seed=seed, **options), space, lag)  # builds one at once
    if warm:
        raise ValueError(f"a warm start needs a native strategy; {name} is Optuna's")
    cls = _optuna_sampler(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return ReseededSampler(cls, seed, lag, **{**_objective_options(cls, directions, cheap, constrained), **options})


def make_strategy(name: str, space: Any, seed: int, options: dict[str, Any] | None = None,
                  directions: tuple[str, ...] = ("maximize",), cheap: Any = None, constrained: bool = False) -> Any:
    """An ask/tell object for strategy ``name`` (Optuna samplers run over an in-memory study with ``directions``)."""
    name = resolve(name)
    options = {**_DEFAULT_OPTIONS.get(name, {}), **(options or {})}
    if name in STRATEGIES:
        cls = STRATEGIES[name]
        return cls(space, seed=seed, **{**_objective_options(cls, directions, cheap, constrained), **options})
    cls = _optuna_sampler(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SamplerStrategy(cls(seed=seed, **{**_objective_options(cls, directions, cheap, constrained), **options}), space,
                               directions)


__all__ = [
    "ALIASES", "OPTUNA_SAMPLERS", "STRATEGIES", "STRATEGY_NAMES", "MultiObjectiveStrategy", "Strategy",
    "StrategySampler", "make_sampler", "make_strategy", "resolve", "strategy_parameters",
]
