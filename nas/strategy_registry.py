"""Every search strategy by name, with the options it takes, as data: what params.yaml is checked against.

Checking params.yaml reads only this module, so it builds no sampler and imports no strategy (nor torch,
scikit-learn, or Optuna unless an Optuna sampler is named), and the prepare stage does not depend on the strategies'
code. It lives beside ``nas/strategies/``, not in it, because importing anything inside that package runs its
``__init__``, which imports every strategy. Each native entry restates its constructor's options and the checks
between them; tests/test_config.py checks that the two agree.

    >>> resolve("re"), strategy_parameters("re")["sample_size"].default
    ('regularized_evolution', 10)
"""

from __future__ import annotations

import importlib
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Literal, NamedTuple

from annotated_types import Ge, Gt, Interval


class Constraint(NamedTuple):
    """A rule between options, checked on the options with the defaults filled in; a breach is reported on
    ``option`` with ``message`` formatted with the options ("must be at most population_size ({population_size})")."""

    option: str
    holds: Callable[[dict[str, Any]], bool]
    message: str


class Native(NamedTuple):
    """A strategy of ours: where its class is, and its constructor's options as ``name: (annotation, default)``."""

    target: str  # "module:Class", imported only to run the strategy
    options: dict[str, tuple[Any, Any]]
    constraints: tuple[Constraint, ...] = ()
    # Sees every objective (a ``MultiObjectiveStrategy``: its constructor also takes ``directions`` and ``cheap``,
    # which the search passes, not params.yaml); a single-objective one is told the first objective only.
    multi_objective: bool = False


def _at_most(option: str, bound: str) -> Constraint:
    return Constraint(option, lambda o: o[option] <= o[bound], f"must be at most {bound} ({{{bound}}})")


_COUNT = Annotated[int, Ge(1)]
NATIVE: dict[str, Native] = {
    "random": Native("nas.strategies.random_search:RandomSearch", {"max_resample": (Annotated[int, Ge(0)], 100)}),
    "local_search": Native("nas.strategies.local_search:LocalSearch", {"initial": (_COUNT, 1)}),
    "regularized_evolution": Native(
        "nas.strategies.regularized_evolution:RegularizedEvolution",
        {"population_size": (Annotated[int, Ge(2)], 20), "sample_size": (_COUNT, 10)},
        (_at_most("sample_size", "population_size"),)),
    "mcts": Native("nas.strategies.mcts:MCTS", {"exploration": (Annotated[float, Ge(0)], 0.1)}),
    "neat": Native("nas.strategies.neat:NEAT", {
        "population_size": (Annotated[int, Ge(2)], 20), "threshold": (Annotated[float, Gt(0)], 2.0),
        "c3": (Annotated[float, Ge(0)], 0.5), "grow_rate": (Annotated[float, Interval(ge=0, le=1)], 0.3)}),
    "reinforce": Native("nas.strategies.reinforce:REINFORCE", {
        "lr": (Annotated[float, Gt(0)], 0.01), "hidden": (_COUNT, 32),
        "baseline_decay": (Annotated[float, Interval(ge=0, lt=1)], 0.9),
        "entropy_weight": (Annotated[float, Ge(0)], 0.01)}),
    "bananas": Native(
        "nas.strategies.bananas:BANANAS",
        {"initial": (_COUNT, 10), "batch": (_COUNT, 10), "candidates": (_COUNT, 100), "parents": (_COUNT, 5),
         "ensemble": (Annotated[int, Ge(2)], 5)},
        (_at_most("batch", "candidates"),)),
    "gp_thompson": Native("nas.strategies.gp_thompson:GPThompson", {
        "initial": (_COUNT, 5), "batch": (_COUNT, 5), "candidates": (_COUNT, 2000),
        "radius": (Annotated[int, Ge(0)], 2), "parents": (_COUNT, 1)}),
    # Budgets are epochs; in a search they default to search.min_epochs, the epochs trained, search.reduction_factor.
    "bohb": Native("nas.strategies.bohb:BOHB", {
        "min_budget": (Annotated[float, Gt(0)], 1.0), "max_budget": (Annotated[float, Gt(0)], 9.0),
        "eta": (Annotated[float, Gt(1)], 3.0), "random_fraction": (Annotated[float, Interval(ge=0, le=1)], 1 / 3),
        "top_fraction": (Annotated[float, Interval(gt=0, lt=1)], 0.15), "candidates": (_COUNT, 64),
        "bandwidth_factor": (Annotated[float, Gt(0)], 3.0)},
        (_at_most("min_budget", "max_budget"),)),
    "mo_regularized_evolution": Native(
        "nas.strategies.mo_regularized_evolution:MORegularizedEvolution",
        {"population_size": (Annotated[int, Ge(2)], 20), "sample_size": (_COUNT, 10)},
        (_at_most("sample_size", "population_size"),), multi_objective=True),
    "lemonade": Native(
        "nas.strategies.lemonade:LEMONADE",
        {"initial": (_COUNT, 15), "n_pc": (_COUNT, 100), "n_ac": (_COUNT, 10), "log_cheap": (bool, True)},
        (_at_most("n_ac", "n_pc"),), multi_objective=True),
    "ehvi": Native("nas.strategies.ehvi:EHVI",
                   {"initial": (_COUNT, 10), "batch": (_COUNT, 5), "candidates": (_COUNT, 2000)},
                   multi_objective=True),
}
# Optuna's samplers under short names; any other sampler class of ``optuna.samplers`` is reached as
# ``optuna.<ClassName>`` (e.g. ``optuna.BruteForceSampler``), its keyword arguments from ``strategy_options``.
OPTUNA: dict[str, str] = {
    "tpe": "TPESampler", "gp": "GPSampler", "qmc": "QMCSampler", "optuna_random": "RandomSampler",
    "nsga2": "NSGAIISampler", "motpe": "TPESampler",  # Optuna >= 4 runs MOTPE as TPE on a multi-objective study
}
STRATEGY_NAMES: tuple[str, ...] = (*NATIVE, *OPTUNA)
# Short names accepted wherever a strategy is named.
# One-shot searches (nas.oneshot): a supernet trained once instead of candidates trained one by one. They are not
# ask/tell strategies: their settings are params.yaml's ``search.oneshot`` block, not ``strategy_options``.
ONESHOT: dict[str, str] = {
    "darts": "DARTS, first order (Liu et al. 2019)", "darts2": "DARTS, second order (Liu et al. 2019)",
    "gdas": "GDAS (Dong & Yang 2019)", "snas": "SNAS (Xie et al. 2019)",
    # weight sharing: a supernet trained once, then a strategy over its estimator
    "rsws": "random search with weight sharing (Li & Talwalkar 2019)", "spos": "SPOS (Guo et al. 2020)",
    "enas": "ENAS (Pham et al. 2018)", "smash": "SMASH hypernetwork (Brock et al. 2018)",
}
# The search.oneshot keys each one-shot strategy reads; params.yaml may not set one it would ignore.
_W_KEYS = ("epochs", "batch_size", "w_lr", "w_lr_min", "momentum", "w_weight_decay", "grad_clip")
_ALPHA_KEYS = (*_W_KEYS, "alpha_lr", "alpha_weight_decay")
ONESHOT_KEYS: dict[str, tuple[str, ...]] = {
    "darts": _ALPHA_KEYS, "darts2": (*_ALPHA_KEYS, "unroll_r"), "gdas": (*_ALPHA_KEYS, "tau_max", "tau_min"),
    "snas": (*_ALPHA_KEYS, "tau_max", "tau_min"), "rsws": _W_KEYS, "spos": (*_W_KEYS, "searcher"), "enas": _W_KEYS,
    "smash": ("epochs", "batch_size"),  # the hypernetwork trains by SMASH's own Adam
}
# The Gumbel-softmax temperature's (start, end) where search.oneshot leaves it null: the papers' values.
TAU_DEFAULTS: dict[str, tuple[float, float]] = {"gdas": (10.0, 0.1), "snas": (1.0, 0.03)}
ALIASES: dict[str, str] = {"re": "regularized_evolution", "local": "local_search", "mo_re": "mo_regularized_evolution"}

# Ranges of Optuna's sampler options, for an option of that name whose signature states only the plain type: ones
# Optuna checks only when a sampler is built (population_size, swapping_prob, qmc_type), and ones it does not check
# at all (it runs n_startup_trials=-1 as 0).
_OPTUNA_OPTION_RANGES: dict[str, Any] = {
    "n_startup_trials": Annotated[int, Ge(0)],
    "n_ei_candidates": Annotated[int, Ge(1)],
    "population_size": Annotated[int, Ge(2)],
    "swapping_prob": Annotated[float, Interval(ge=0, le=1)],
    "crossover_prob": Annotated[float, Interval(ge=0, le=1)],
    "mutation_prob": Annotated[float, Interval(ge=0, le=1)] | None,  # None: 1 / the number of parameters
    "qmc_type": Literal["sobol", "halton"],
}
# Checks between options that Optuna's samplers make when built, by class name.
_OPTUNA_CONSTRAINTS: dict[str, tuple[Constraint, ...]] = {
    "TPESampler": (Constraint("group", lambda o: o["multivariate"] or not o["group"],
                              "may be true only when multivariate is true"),),
}
# Optuna's QMC sampler covers numerical parameters only: over the spaces' categorical decisions it samples at
# random, which Optuna would otherwise warn about once per decision and trial.
_DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {"qmc": {"warn_independent_sampling": False}}
_PLAIN = (int, float, str, bool)


def _optuna_class(name: str) -> type | None:
    """The class of ``optuna.samplers`` that strategy ``name`` names, or None (Optuna is imported only here)."""
    if name not in OPTUNA and not name.startswith("optuna."):
        return None
    import optuna

    cls = getattr(optuna.samplers, OPTUNA.get(name) or name.removeprefix("optuna."), None)
    return cls if isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler) else None


# Optuna samplers that cannot run behind ``ReseededSampler`` (a sampler made afresh for each trial, shown only the
# finished trials of earlier slots: nas.strategies.optuna_sampler), and why.
UNRESEEDABLE = {
    "GridSampler": "it walks a grid it shuffles by its seed, and each trial's sampler has a seed of its own, so the "
                   "trials repeat grid points and miss others",
    "BruteForceSampler": "it must see the trial being sampled and the running ones, which each trial's view hides",
}


# Optuna options that do nothing behind ``ReseededSampler``, and why.
INERT_OPTIONS = {
    "constant_liar": "has no effect here: each trial's sampler sees only the finished trials of earlier slots "
                     "(search.lag), which is what makes parallel workers give the same trials; leave it out",
}


def resolve(name: str) -> str:
    """The registered name of strategy ``name`` (aliases resolved); raises ValueError listing the allowed ones."""
    name = ALIASES.get(name, name)
    cls = None if name in NATIVE or name in ONESHOT else _optuna_class(name)
    if cls is not None and cls.__name__ in UNRESEEDABLE:
        raise ValueError(f"{name} cannot run here: {UNRESEEDABLE[cls.__name__]}; use another strategy (random, "
                         "optuna_random or qmc to cover the space without a model)")
    if name in NATIVE or name in ONESHOT or (cls is not None and not inspect.isabstract(cls)):
        return name
    allowed = [*STRATEGY_NAMES, *(f"{a} (= {n})" for a, n in ALIASES.items()), "optuna.<any sampler class>",
               *(f"{n} (one-shot)" for n in ONESHOT)]
    problem = f"{name!r} is an abstract base class, not a sampler" if cls is not None else f"unknown strategy {name!r}"
    raise ValueError(f"{problem}; allowed: {', '.join(allowed)}")


def is_multi_objective(name: str) -> bool:
    """Whether strategy ``name`` can search several objectives: the native ones declared so, and every Optuna
    sampler but CMA-ES, which Optuna refuses on a multi-objective study (NSGA-II and MOTPE are built for one)."""
    name = resolve(name)
    if name in ONESHOT:
        return False
    return NATIVE[name].multi_objective if name in NATIVE else _optuna_class(name).__name__ != "CmaEsSampler"


def strategy_class(name: str) -> type:
    """The class that runs strategy ``name``: importing it imports the strategy's code (torch, scikit-learn...)."""
    name = resolve(name)
    if name in NATIVE:
        module, cls = NATIVE[name].target.split(":")
        return getattr(importlib.import_module(module), cls)
    return _optuna_class(name)


def strategy_parameters(name: str) -> dict[str, inspect.Parameter]:
    """Options ``search.strategy_options`` may set for the strategy ``name``, by name, with their annotations
    evaluated (``inspect.Parameter.empty`` where an annotation cannot be, or states nothing)."""
    name = resolve(name)
    if name in ONESHOT:
        return {}
    if name in NATIVE:
        return {key: inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
                for key, (annotation, default) in NATIVE[name].options.items()}
    factory = _optuna_class(name)
    namespace = inspect.unwrap(factory.__init__).__globals__
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind not in kinds or p.name in ("self", "seed"):
            continue
        annotation = p.annotation
        if isinstance(annotation, str):
            # What inspect.signature(eval_str=True) does, one parameter at a time: Optuna imports some annotation
            # names for type checkers only, and one of those must not hide the types of the other options.
            try:
                annotation = eval(annotation, namespace)  # source annotations, not user input
            except NameError:
                annotation = inspect.Parameter.empty
        optional = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else ()
        if annotation in _PLAIN or optional and set(optional) <= {*_PLAIN, type(None)}:  # x, or x | None
            annotation = _OPTUNA_OPTION_RANGES.get(p.name, annotation)
        parameters[p.name] = p.replace(annotation=annotation)
    return parameters


def constraints(name: str) -> tuple[Constraint, ...]:
    """The checks between the options of strategy ``name``, to run on its options with the defaults filled in."""
    name = resolve(name)
    if name in ONESHOT:
        return ()
    if name in NATIVE:
        return NATIVE[name].constraints
    return _OPTUNA_CONSTRAINTS.get(_optuna_class(name).__name__, ())


__all__ = [
    "ALIASES", "INERT_OPTIONS", "NATIVE", "ONESHOT", "OPTUNA", "STRATEGY_NAMES", "UNRESEEDABLE", "Constraint", "Native",
    "constraints", "is_multi_objective", "resolve", "strategy_class", "strategy_parameters",
]
