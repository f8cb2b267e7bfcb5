"""Search strategies by name.

Native strategies (ask/tell, ``nas.strategies.base.Strategy``) and Optuna's samplers are both used through an Optuna
sampler, so the pipeline drives every strategy the same way and the Optuna study is the one trial log.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import optuna

from nas.strategies.base import Strategy
from nas.strategies.local_search import LocalSearch
from nas.strategies.mcts import MCTS
from nas.strategies.optuna_sampler import ReseededSampler, SamplerStrategy, StrategySampler
from nas.strategies.random_search import RandomSearch
from nas.strategies.regularized_evolution import RegularizedEvolution

STRATEGIES: dict[str, type[Strategy]] = {
    "random": RandomSearch,
    "local_search": LocalSearch,
    "regularized_evolution": RegularizedEvolution,
    "mcts": MCTS,
}
OPTUNA_SAMPLERS: dict[str, type[optuna.samplers.BaseSampler]] = {
    "tpe": optuna.samplers.TPESampler,
}
STRATEGY_NAMES: tuple[str, ...] = (*STRATEGIES, *OPTUNA_SAMPLERS)
# Short names accepted where strategies are listed on a command line.
ALIASES: dict[str, str] = {"re": "regularized_evolution", "local": "local_search"}


def strategy_parameters(name: str) -> list[str]:
    """Options ``search.strategy_options`` may set for the strategy ``name``."""
    factory = STRATEGIES.get(name) or OPTUNA_SAMPLERS[name]
    parameters = inspect.signature(factory).parameters.values()
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in parameters if p.kind in kinds and p.name not in ("space", "seed")]


def make_sampler(name: str, space: Any, seed: int, options: dict[str, Any] | None = None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler that runs strategy ``name`` over ``space`` (raises ValueError on bad options)."""
    options = dict(options or {})
    if name in STRATEGIES:
        return StrategySampler(STRATEGIES[name](space, seed=seed, **options), space)
    if name in OPTUNA_SAMPLERS:
        return ReseededSampler(OPTUNA_SAMPLERS[name], seed, **options)
    raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")


def make_strategy(name: str, space: Any, seed: int, options: dict[str, Any] | None = None) -> Any:
    """An ask/tell object for strategy ``name`` (Optuna samplers run over an in-memory study)."""
    options = dict(options or {})
    if name in STRATEGIES:
        return STRATEGIES[name](space, seed=seed, **options)
    if name in OPTUNA_SAMPLERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return SamplerStrategy(OPTUNA_SAMPLERS[name](seed=seed, **options), space)
    raise ValueError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGY_NAMES)}")


__all__ = [
    "ALIASES", "OPTUNA_SAMPLERS", "STRATEGIES", "STRATEGY_NAMES", "Strategy", "StrategySampler", "make_sampler",
    "make_strategy",
]
