"""Search strategies by name.

Native strategies (ask/tell, ``nas.strategies.base.Strategy``) and Optuna's samplers are both used through an Optuna
sampler, so the pipeline drives every strategy the same way and the Optuna study is the one trial log.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Annotated, Any

import optuna
from annotated_types import Ge

from nas.strategies.bananas import BANANAS
from nas.strategies.base import Strategy
from nas.strategies.gp_thompson import GPThompson
from nas.strategies.local_search import LocalSearch
from nas.strategies.mcts import MCTS
from nas.strategies.neat import NEAT
from nas.strategies.optuna_sampler import ReseededSampler, SamplerStrategy, StrategySampler
from nas.strategies.random_search import RandomSearch
from nas.strategies.regularized_evolution import RegularizedEvolution
from nas.strategies.reinforce import REINFORCE

STRATEGIES: dict[str, type[Strategy]] = {
    "random": RandomSearch,
    "local_search": LocalSearch,
    "regularized_evolution": RegularizedEvolution,
    "mcts": MCTS,
    "neat": NEAT,
    "reinforce": REINFORCE,
    "bananas": BANANAS,
    "gp_thompson": GPThompson,
}
# Optuna's samplers under short names; any other sampler class of ``optuna.samplers`` is reached as
# ``optuna.<ClassName>`` (e.g. ``optuna.BruteForceSampler``), its keyword arguments from ``strategy_options``.
OPTUNA_SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
    "gp": optuna.samplers.GPSampler,
    "qmc": optuna.samplers.QMCSampler,
    "optuna_random": optuna.samplers.RandomSampler,
    "nsga2": optuna.samplers.NSGAIISampler,
}
# Ranges of Optuna's sampler options that Optuna itself does not check (it runs n_startup_trials=-1 as 0).
_OPTUNA_OPTION_RANGES: dict[str, Any] = {
    "n_startup_trials": Annotated[int, Ge(0)],
    "n_ei_candidates": Annotated[int, Ge(1)],
}
STRATEGY_NAMES: tuple[str, ...] = (*STRATEGIES, *OPTUNA_SAMPLERS)
# Short names accepted wherever a strategy is named.
ALIASES: dict[str, str] = {"re": "regularized_evolution", "local": "local_search"}


def _optuna_sampler(name: str) -> type[optuna.samplers.BaseSampler] | None:
    if name in OPTUNA_SAMPLERS:
        return OPTUNA_SAMPLERS[name]
    cls = getattr(optuna.samplers, name.removeprefix("optuna."), None) if name.startswith("optuna.") else None
    return cls if isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler) else None


def resolve(name: str) -> str:
    """The registered name of strategy ``name`` (aliases resolved); raises ValueError listing the allowed ones."""
    name = ALIASES.get(name, name)
    if name in STRATEGIES or _optuna_sampler(name) is not None:
        return name
    allowed = [*STRATEGY_NAMES, *(f"{a} (= {n})" for a, n in ALIASES.items()), "optuna.<any sampler class>"]
    raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(allowed)}")


def strategy_parameters(name: str) -> dict[str, inspect.Parameter]:
    """Options ``search.strategy_options`` may set for the strategy ``name``, by name, with their annotations
    evaluated (``inspect.Parameter.empty`` where an annotation cannot be, or states nothing)."""
    name = resolve(name)
    factory = STRATEGIES.get(name) or _optuna_sampler(name)
    namespace = inspect.unwrap(factory.__init__).__globals__
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind not in kinds or p.name in ("self", "space", "seed"):
            continue
        annotation = p.annotation
        if isinstance(annotation, str):
            # What inspect.signature(eval_str=True) does, one parameter at a time: Optuna imports some annotation
            # names for type checkers only, and one of those must not hide the types of the other options.
            try:
                annotation = eval(annotation, namespace)  # noqa: S307 (source annotations, not user input)
            except NameError:
                annotation = inspect.Parameter.empty
        if name not in STRATEGIES and annotation is int:
            annotation = _OPTUNA_OPTION_RANGES.get(p.name, annotation)
        parameters[p.name] = p.replace(annotation=annotation)
    return parameters


# Optuna's QMC sampler covers numerical parameters only: over the spaces' categorical decisions it samples at
# random, which Optuna would otherwise warn about once per decision and trial.
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {"qmc": {"warn_independent_sampling": False}}


def make_sampler(name: str, space: Any, seed: int, options: dict[str, Any] | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler that runs strategy ``name`` over ``space`` (raises ValueError on bad names or options)."""
    name = resolve(name)
    options = {**_DEFAULT_OPTIONS.get(name, {}), **(options or {})}
    if name in STRATEGIES:
        return StrategySampler(STRATEGIES[name](space, seed=seed, **options), space)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return ReseededSampler(_optuna_sampler(name), seed, **options)


def make_strategy(name: str, space: Any, seed: int, options: dict[str, Any] | None = None) -> Any:
    """An ask/tell object for strategy ``name`` (Optuna samplers run over an in-memory study)."""
    name = resolve(name)
    options = {**_DEFAULT_OPTIONS.get(name, {}), **(options or {})}
    if name in STRATEGIES:
        return STRATEGIES[name](space, seed=seed, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SamplerStrategy(_optuna_sampler(name)(seed=seed, **options), space)


__all__ = [
    "ALIASES", "OPTUNA_SAMPLERS", "STRATEGIES", "STRATEGY_NAMES", "Strategy", "StrategySampler", "make_sampler",
    "make_strategy", "resolve", "strategy_parameters",
]
