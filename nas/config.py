"""params.yaml, validated before any work is done.

Every stage reads its section through ``load_params``; a mistake becomes one ``UserError`` line that names the key
and the allowed values (the CLI and the flows turn it into exit code 2).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Hashable, Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from annotated_types import GroupedMetadata
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from nas.errors import UserError, first_line
from nas.estimation.objectives import CHEAP_OBJECTIVES, OBJECTIVES
from nas.strategy_registry import (
    INERT_OPTIONS,
    NATIVE,
    ONESHOT,
    ONESHOT_KEYS,
    STRATEGY_NAMES,
    TAU_DEFAULTS,
    constraints,
    is_multi_objective,
    resolve,
    strategy_parameters,
)

DATASETS = ("digits", "mnist5k", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")
DIRECTIONS = ("maximize", "minimize")
PRUNERS = ("none", "median", "successive_halving", "hyperband", "curve")
# Pruners that work in a multi-objective search (nas.search.pruners: successive halving over Pareto ranks).
MULTI_OBJECTIVE_PRUNERS = ("none", "successive_halving")
# nas.estimation.zero_cost's proxies (plain names here: validating params.yaml imports no torch).
ZERO_COST_PROXIES = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "synflow", "naswot", "params", "flops")
# Strategies whose proposals have a parent whose weights a child can inherit (search.inherit).
INHERITING = ("regularized_evolution", "local_search")
INHERITING_SPACES = ("macro", "nb201")  # whose network morphisms nas.estimation.inheritance knows
# YAML's true is not the number 1, nor is 1 a boolean (an integer still counts as a float).
_STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DataParams(Section):
    dataset: Literal[DATASETS] = "digits"  # type: ignore[valid-type]
    root: str = "data/raw"
    out: str = "data/prepared"
    download: bool = True
    val_fraction: float = Field(0.15, gt=0, lt=0.5)
    # Used only by datasets that ship no test split of their own (digits, mnist5k).
    test_fraction: float = Field(0.15, gt=0, lt=0.5)
    seed: int = Field(0, ge=0)


class TrainParams(Section):
    """Training hyperparameters shared by the search's estimator and the retrain stage."""

    epochs: int = Field(ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(0.05, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0, le=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    warmup_epochs: int = Field(0, ge=0, le=10_000)
    # auto: random crop (padding 4) + horizontal flip for CIFAR, none for digits, MNIST-like data and SVHN
    augment: Literal["auto", "none", "crop_flip"] = "auto"
    cutout: int = Field(0, ge=0, le=1024)
    channels_last: bool = True
    compile: bool = False
    channels: int = Field(ge=1, le=1024)
    cells_per_stage: int = Field(ge=1, le=64)

    @model_validator(mode="after")
    def _warmup_within_training(self):
        if self.warmup_epochs >= self.epochs and self.warmup_epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs}) must be less than epochs ({self.epochs})")
        return self


# Spaces with a supernet (nas.oneshot): one-shot strategies run on these.
SUPERNET_SPACES = ("nb201", "darts")


class OneShotParams(Section):
    """A one-shot search's settings (README "One-shot search"); the defaults are DARTS's CIFAR-10 search."""

    epochs: int = Field(50, ge=1, le=10_000)  # supernet epochs
    batch_size: int = Field(64, ge=1, le=65_536)
    w_lr: float = Field(0.025, gt=0, le=10)  # supernet weights: SGD, cosine from w_lr to w_lr_min
    w_lr_min: float = Field(0.001, ge=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    w_weight_decay: float = Field(3e-4, ge=0, le=1)
    grad_clip: float = Field(5.0, gt=0)
    alpha_lr: float = Field(3e-4, gt=0, le=10)  # architecture parameters: Adam
    alpha_weight_decay: float = Field(1e-3, ge=0, le=1)
    # Gumbel-softmax temperature (GDAS, SNAS), annealed from tau_max to tau_min; null: the method's paper value.
    tau_max: float | None = Field(None, gt=0, allow_inf_nan=False)
    tau_min: float | None = Field(None, gt=0, allow_inf_nan=False)
    unroll_r: float = Field(0.01, gt=0, le=1)  # DARTS second order: finite-difference step r / |grad|
    # spos: the strategy that searches over the trained supernet (any single-objective one)
    searcher: str = "regularized_evolution"

    @field_validator("searcher")
    @classmethod
    def _known_searcher(cls, name: str) -> str:
        name = resolve(name)
        if name in ONESHOT:
            raise ValueError(f"must be a strategy that proposes architectures, not the one-shot {name}")
        return name

    @model_validator(mode="after")
    def _ranges(self) -> OneShotParams:
        if self.w_lr_min > self.w_lr:
            raise ValueError(f"w_lr_min ({self.w_lr_min}) must be at most w_lr ({self.w_lr})")
        if self.tau_max is not None and self.tau_min is not None and self.tau_min > self.tau_max:
            raise ValueError(f"tau_min ({self.tau_min}) must be at most tau_max ({self.tau_max})")
        return self


class ZeroCostWarmup(Section):
    """Start a search from the ``top_k`` of ``pool`` random architectures by a zero-cost proxy (README)."""

    proxy: Literal[ZERO_COST_PROXIES] = "synflow"  # type: ignore[valid-type]
    pool: int = Field(100, ge=1, le=1_000_000)
    top_k: int = Field(10, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _top_within_pool(self) -> ZeroCostWarmup:
        if self.top_k > self.pool:
            raise _option_error("top_k", f"must be at most pool ({self.pool}) (got {self.top_k})")
        return self


class SearchParams(TrainParams):
    space: Literal["nb201", "macro", "darts"] = "nb201"
    strategy: str = "regularized_evolution"
    strategy_options: dict[str, Any] = Field(default_factory=dict, validate_default=True)
    n_trials: int = Field(24, ge=1, le=1_000_000)
    epochs: int = Field(4, ge=1, le=10_000)
    channels: int = Field(8, ge=1, le=1024)
    cells_per_stage: int = Field(1, ge=1, le=64)
    seed: int = Field(0, ge=0)
    storage: str = "sqlite:///optuna.db"
    study_name: str | None = None
    # Trials run at once, and by whom: threads of this process (local) or a Dask cluster (dask); dask_address empty
    # starts a LocalCluster of `workers` processes, else the scheduler at that address ("tcp://host:8786").
    workers: int = Field(1, ge=1, le=4096)
    executor: Literal["local", "dask"] = "local"
    dask_address: str = ""
    # Trial k is proposed from the results of trials 0..k-lag only (waiting for them), so the same seed gives the
    # same trials with any number of workers up to lag, whatever order they finish in.
    lag: int = Field(4, ge=1, le=4096)
    # What the search optimises: objective names (their usual direction) or {name: maximize|minimize}.
    objectives: list[str | dict[str, str]] = Field(default_factory=lambda: ["val_accuracy"], min_length=1)
    # Hard bounds on objectives: a maximum for one minimised, a minimum for one maximised.
    constraints: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(default_factory=dict)
    # Early stopping (multi-fidelity): trials train up to max_epochs (null: epochs) and may be stopped after
    # min_epochs; README "Multi-fidelity".
    pruner: Literal[PRUNERS] = "none"  # type: ignore[valid-type]
    min_epochs: int = Field(1, ge=1, le=10_000)
    max_epochs: int | None = Field(None, ge=1, le=10_000)
    reduction_factor: int = Field(3, ge=2, le=100)
    # pruner: curve stops a trial when the extrapolated probability that it beats the best trial at max_epochs
    # falls below this (Domhan et al. 2015; nas.estimation.curves).
    curve_threshold: float = Field(0.05, gt=0, lt=1)
    # Weight inheritance (nas.estimation.inheritance): a child of evolution or local search starts from its
    # parent's trained weights (network morphisms) and trains child_epochs instead of epochs.
    inherit: bool = False
    child_epochs: int | None = Field(None, ge=1, le=10_000)  # null: epochs
    # Zero-cost warm-up (nas.estimation.zero_cost): the first top_k proposals are the best of `pool` random
    # architectures by `proxy` at initialisation; null: none.
    zero_cost_warmup: ZeroCostWarmup | None = None
    # Latency is measured for this batch size on this device (auto: CUDA when present, else CPU), at the retrain
    # stage's size (retrain.channels, retrain.cells_per_stage): the network that is deployed.
    latency_batch_size: int = Field(1, ge=1, le=65_536)
    latency_device: Literal["auto", "cpu", "cuda"] = "auto"
    # Stop starting trials after this many seconds of a search run (running ones finish); null: no limit.
    timeout_s: float | None = Field(None, gt=0)
    # One-shot strategies only (darts, darts2, gdas, snas, rsws, spos, enas, smash); null: the defaults.
    oneshot: OneShotParams | None = None

    @property
    def is_oneshot(self) -> bool:
        return self.strategy in ONESHOT

    @model_validator(mode="after")
    def _oneshot_agrees(self) -> SearchParams:
        if self.oneshot is not None and not self.is_oneshot:
            raise _option_error("oneshot", f"is for one-shot strategies ({', '.join(ONESHOT)}); {self.strategy} is "
                                           "not one: remove the block or pick one of them")
        if self.is_oneshot and self.space not in SUPERNET_SPACES:
            raise _option_error("space", f"{self.space} has no supernet; one-shot strategies ({self.strategy}) run on "
                                         f"{' or '.join(SUPERNET_SPACES)}")
        if self.is_oneshot and len(self.directions) > 1:
            raise _option_error("objectives", f"{self.strategy} optimises val_accuracy only (got "
                                              f"{', '.join(self.directions)})")
        if self.oneshot is not None and "searcher" in self.oneshot.model_fields_set and self.strategy != "spos":
            raise _option_error("oneshot.searcher", f"only spos takes one; {self.strategy} proposes architectures "
                                                    "its own way (rsws and smash at random, enas by its controller)")
        if self.oneshot is not None and self.is_oneshot:
            o, reads = self.oneshot, ONESHOT_KEYS[self.strategy]
            unread = [k for k in type(o).model_fields if k in o.model_fields_set and k not in reads]
            if unread:
                raise _option_error(f"oneshot.{unread[0]}", f"{self.strategy} does not use it (it reads "
                                                            f"{', '.join(reads)}); remove it")
            start, end = TAU_DEFAULTS.get(self.strategy, (None, None))
            high, low = o.tau_max if o.tau_max is not None else start, o.tau_min if o.tau_min is not None else end
            if high is not None and low > high:
                raise _option_error("oneshot", f"tau_min ({low}) must be at most tau_max ({high}; null is "
                                               f"{self.strategy}'s {start} to {end})")
        for key, value, alone in (("workers", self.workers, 1), ("executor", self.executor, "local"),
                                  ("timeout_s", self.timeout_s, None)):
            if self.is_oneshot and value != alone:
                raise _option_error(key, f"{self.strategy} trains one supernet in one process, epoch after epoch: "
                                         f"set {'null' if alone is None else alone} (got {value})")
        if self.is_oneshot and self.pruner != "none":
            raise _option_error("pruner", f"{self.strategy} trains one supernet: no trial to prune (got {self.pruner})")
        return self

    @model_validator(mode="after")
    def _inheritance_agrees(self) -> SearchParams:
        if self.child_epochs is not None and not self.inherit:
            raise _option_error("child_epochs", "is the epochs of a child that inherits its parent's weights: set "
                                                "inherit: true or remove it")
        if self.inherit and self.strategy not in INHERITING:
            raise _option_error("inherit", f"needs a strategy whose children have a parent ({', '.join(INHERITING)}); "
                                           f"{self.strategy} has none")
        if self.inherit and self.space not in INHERITING_SPACES:
            raise _option_error("inherit", f"network morphisms are written for {', '.join(INHERITING_SPACES)} "
                                           f"(got space: {self.space})")
        if self.inherit and self.pruner != "none":
            raise _option_error("inherit", f"a child trains child_epochs from its parent's weights: no pruner with it "
                                           f"(got pruner: {self.pruner})")
        if self.zero_cost_warmup is not None and self.strategy not in NATIVE:
            raise _option_error("zero_cost_warmup", f"replaces the first proposals of a native strategy ("
                                                    f"{', '.join(NATIVE)}); {self.strategy} is not one")
        return self

    @property
    def oneshot_settings(self) -> OneShotParams:
        return self.oneshot or OneShotParams()

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, entries: list[str | dict[str, str]]) -> list[str | dict[str, str]]:
        names = []
        for entry in entries:
            if isinstance(entry, dict):
                if len(entry) != 1:
                    raise ValueError(f"each entry is a name or one {{name: direction}} (got {entry!r})")
                (name, direction), = entry.items()
                if direction not in DIRECTIONS:
                    raise ValueError(f"direction of {name} must be one of {', '.join(DIRECTIONS)} (got {direction!r})")
            else:
                name = entry
            if name not in OBJECTIVES:
                raise ValueError(f"unknown objective {name!r}; allowed: {', '.join(OBJECTIVES)}")
            if name in names:
                raise ValueError(f"objective {name} listed twice")
            names.append(name)
        if "val_accuracy" not in names:
            raise ValueError("must include val_accuracy (the objective training measures)")
        if any(isinstance(e, dict) and e.get("val_accuracy", "maximize") != "maximize" for e in entries):
            raise ValueError("val_accuracy can only be maximized")
        return entries

    @property
    def directions(self) -> dict[str, str]:
        """The objectives in order, with their directions."""
        out = {}
        for entry in self.objectives:
            name, direction = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
            out[name] = direction or OBJECTIVES[name].direction
        return out

    def search_defaults(self) -> dict[str, Any]:
        """Strategy options whose default comes from the search's own keys: BOHB's budgets are its epochs; a
        warm-started local search evaluates the whole warm list before its first walk (``initial``), which then
        starts from the best of it with every neighbour to visit, as Abdelfattah et al.'s warm-up does."""
        if self.strategy == "local_search" and self.zero_cost_warmup:
            return {"initial": self.zero_cost_warmup.top_k}
        if self.strategy != "bohb":
            return {}
        return {"min_budget": float(self.min_epochs), "max_budget": float(self.trained_epochs),
                "eta": float(self.reduction_factor)}

    @property
    def trained_epochs(self) -> int:
        """How many epochs a trial trains (unless pruned): max_epochs with a pruner, else epochs."""
        return self.max_epochs or self.epochs if self.pruner != "none" else self.epochs

    @field_validator("study_name")
    @classmethod
    def _quotable_study_name(cls, name: str | None) -> str | None:
        # MLflow finds a study's run by a filter string, in which a quote would end the name; empty: the derived name
        if name is not None and any(c in name for c in "'\"\\"):
            raise ValueError("must be a name without quotes or backslashes (MLflow filters runs by it)")
        return name or None

    @field_validator("dask_address")
    @classmethod
    def _scheduler_address(cls, address: str) -> str:
        if address and not re.fullmatch(r"(?:(?:tcp|tls|ws|wss|ucx)://)?[\w.\-\[\]:]+:\d+", address):
            raise ValueError("must be empty (a local Dask cluster) or a scheduler address such as tcp://host:8786")
        return address

    @model_validator(mode="after")
    def _workers_within_lag(self) -> SearchParams:
        if self.workers > self.lag:
            raise ValueError(f"workers ({self.workers}) must be at most lag ({self.lag}): trial k waits for trial "
                             f"k-lag, so more workers than lag would idle; raise search.lag")
        if self.dask_address and self.executor != "dask":
            raise ValueError(f"dask_address ({self.dask_address}) is used only with executor: dask (got executor: "
                             f"{self.executor})")
        return self

    @model_validator(mode="after")
    def _objectives_agree(self) -> SearchParams:
        names = list(self.directions)
        for key in self.constraints:
            if key not in names:
                raise _option_error("constraints", f"{key} is not an objective of this search (objectives: "
                                    f"{', '.join(names)}); add it to search.objectives or drop the constraint")
        if self.max_epochs and self.min_epochs > self.max_epochs:
            raise _option_error("min_epochs", f"must be at most max_epochs ({self.max_epochs}) (got {self.min_epochs})")
        if self.min_epochs > self.trained_epochs and self.strategy == "bohb":
            raise _option_error("min_epochs", f"must be at most the epochs trials train ({self.trained_epochs}: "
                                              f"{'max_epochs' if self.pruner != 'none' else 'epochs'}), BOHB's largest "
                                              f"budget (got {self.min_epochs})")
        if self.pruner == "curve" and self.strategy == "bohb":
            raise _option_error("pruner", "curve extrapolates every trial to max_epochs, but bohb trains each trial to "
                                          "the budget it chooses; with bohb use pruner: none")
        if self.pruner != "none" and self.strategy == "bohb":
            raise _option_error("pruner", f"{self.pruner} would stop trials bohb gave a budget (and judge them against "
                                          "max_epochs, not their budget): bohb's brackets are its early stopping; "
                                          "with bohb use pruner: none")
        if not self.max_epochs and self.min_epochs > self.epochs:
            raise _option_error("min_epochs", f"must be at most epochs ({self.epochs}), which max_epochs: null stands "
                                              f"for (got {self.min_epochs})")
        if len(names) > 1 and self.pruner not in MULTI_OBJECTIVE_PRUNERS:
            raise _option_error("pruner", f"{self.pruner} cannot rank a multi-objective search ({', '.join(names)}); "
                                          f"allowed with several objectives: {', '.join(MULTI_OBJECTIVE_PRUNERS)}")
        if len(names) > 1 and not is_multi_objective(self.strategy):
            allowed = ", ".join(n for n in STRATEGY_NAMES if is_multi_objective(n))
            raise _option_error("strategy", f"{self.strategy} optimises one objective; with several objectives "
                                            f"({', '.join(names)}) use one of {allowed}")
        if self.pruner != "none":  # a pruner stops a trial after an epoch from min_epochs on, before the last one
            first = self.min_epochs
            if self.pruner == "curve":
                from nas.estimation.curves import MIN_POINTS  # scipy: loaded only for this pruner

                first = max(first, MIN_POINTS)
            if first >= self.trained_epochs:
                held = "min_epochs" if first == self.min_epochs else f"the {MIN_POINTS} epochs a curve fit needs"
                raise _option_error("max_epochs", f"must be above {first} ({held}) for pruner {self.pruner} to stop "
                                                  f"any trial (got "
                                                  + (f"{self.max_epochs})" if self.max_epochs else
                                                     f"null, so epochs {self.epochs})"))
        if self.strategy == "ehvi":
            self._ehvi_objectives(names)
        return self

    @staticmethod
    def _ehvi_objectives(names: list[str]) -> None:
        """EHVI models val_accuracy and takes every other objective as known before training (nas.strategies.ehvi);
        latency is timed per trial, not screened (``CostMeasure.cheap``)."""
        if len(names) > 1 and "latency_ms" in names:
            screened = [n for n in CHEAP_OBJECTIVES if n != "latency_ms"]
            raise _option_error("objectives", f"ehvi takes every objective but val_accuracy as known before "
                                              f"training ({', '.join(screened)}); latency_ms is timed per trial "
                                              f"(got {', '.join(names)}); for latency_ms use lemonade, "
                                              f"mo_regularized_evolution, nsga2 or motpe")

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        return resolve(name)

    @field_validator("strategy_options")
    @classmethod
    def _valid_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Each option against the type and range the strategy's constructor declares for it."""
        name = info.data.get("strategy")
        if name is None:  # the strategy itself was invalid and is reported
            return options
        parameters = strategy_parameters(name)
        for key, value in options.items():
            if key not in parameters:
                raise _option_error(key, f"not an option of {name} (allowed: {', '.join(parameters) or 'none'}); "
                                         "options are per strategy: set strategy_options: {} when switching strategies")
            annotation = parameters[key].annotation
            if annotation is inspect.Parameter.empty:  # a Python function or object (Optuna's callables): no
                # YAML value is one, and None would switch off what the search sets there (constraints_func)
                raise _option_error(key, f"{name} takes a Python function or object there, which params.yaml "
                                         "cannot give; leave it out")
            if key in INERT_OPTIONS:
                raise _option_error(key, INERT_OPTIONS[key])
            try:
                TypeAdapter(annotation, config=_STRICT).validate_python(value)
            except ValidationError as exc:
                allowed = allowed_values(annotation)
                message = f"must be {allowed}" if allowed else exc.errors()[0]["msg"]
                raise _option_error(key, f"{message} (got {value!r})") from None
        for key, parameter in parameters.items():
            if parameter.default is parameter.empty and key not in options:
                raise _option_error(key, f"required by {name}")
        return options

    @model_validator(mode="after")
    def _options_agree(self) -> SearchParams:
        """The checks between options each strategy declares (sample_size <= population_size), on the options with
        the defaults filled in: nothing is built to validate."""
        defaults = {key: p.default for key, p in strategy_parameters(self.strategy).items()} | self.search_defaults()
        options = {**defaults, **self.strategy_options}
        for rule in constraints(self.strategy):
            if not rule.holds(options):
                given = rule.option in self.strategy_options
                got = f"got {options[rule.option]!r}" if given else f"{options[rule.option]!r} by default"
                raise _option_error(f"strategy_options.{rule.option}", f"{rule.message.format(**options)} ({got})")
        if self.strategy == "bohb":
            _distinct_bohb_epochs(options)
        return self


def _distinct_bohb_epochs(options: dict[str, Any]) -> None:
    """A trial trains max(1, round(budget)) whole epochs: two of BOHB's budgets (max_budget * eta**-k) that round to
    the same epochs would be one fidelity the model takes for two, and retrain the same architectures for nothing."""
    low, high, eta = float(options["min_budget"]), float(options["max_budget"]), float(options["eta"])
    rungs = math.floor(math.log(high / low) / math.log(eta) + 1e-9)  # as BOHB counts them
    budgets = [high * eta ** -k for k in range(rungs + 1)][::-1]
    epochs = [max(1, round(b)) for b in budgets]
    if len(set(epochs)) < len(epochs):
        shown = ", ".join(f"{b:.3g}" for b in budgets)
        raise _option_error("strategy_options.min_budget", f"bohb's budgets {shown} train {epochs} epochs: two "
                                                           "budgets round to the same whole epochs; raise min_budget "
                                                           "or eta so that each budget is its own number of epochs")


class RetrainParams(TrainParams):
    # Which searched architecture is retrained: the best val_accuracy (best), the knee of the Pareto front (knee), or
    # the best val_accuracy among the front members within a bound (under:latency_ms=5.0).
    select: str = "best"
    epochs: int = Field(30, ge=1, le=10_000)
    warmup_epochs: int = Field(2, ge=0, le=10_000)
    label_smoothing: float = Field(0.1, ge=0, lt=1)
    channels: int = Field(16, ge=1, le=1024)
    cells_per_stage: int = Field(2, ge=1, le=64)
    seed: int = Field(0, ge=0)
    # DARTS's retraining extras (darts space only): the auxiliary head's loss weight (DARTS: 0.4; 0: no head), and
    # drop-path, its probability rising linearly from 0 to this over the epochs (DARTS: 0.2).
    auxiliary_weight: float = Field(0.0, ge=0, le=10)
    drop_path_prob: float = Field(0.0, ge=0, lt=1)

    @field_validator("select")
    @classmethod
    def _selection(cls, select: str) -> str:
        if not re.fullmatch(r"best|knee|under:\w+=[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", select):
            raise ValueError("must be best, knee or under:<objective>=<bound> such as under:latency_ms=5.0")
        return select


class TrackingParams(Section):
    # MLFLOW_TRACKING_URI, when set, wins over this.
    uri: str = "sqlite:///mlflow.db"
    experiment: str = Field("nas", min_length=1)
    model_name: str = Field("nas-digits", min_length=1)


class Params(Section):
    data: DataParams = Field(default_factory=DataParams)
    search: SearchParams = Field(default_factory=SearchParams)
    retrain: RetrainParams = Field(default_factory=RetrainParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)

    @model_validator(mode="after")
    def _darts_extras(self) -> Params:
        r = self.retrain
        for key, value in (("auxiliary_weight", r.auxiliary_weight), ("drop_path_prob", r.drop_path_prob)):
            if value and self.search.space != "darts":
                raise _option_error(f"retrain.{key}", f"only the darts space's network has it (search.space: "
                                                      f"{self.search.space}); set it to 0 (got {value})")
        return self

    @model_validator(mode="after")
    def _select_searched(self) -> Params:
        name = self.retrain.select.removeprefix("under:").split("=")[0]
        if self.retrain.select.startswith("under:") and name not in self.search.directions:
            raise _option_error("retrain.select", f"{name} is not an objective of the search (search.objectives: "
                                                  f"{', '.join(self.search.directions)})")
        return self


_KINDS = {bool: "true or false", int: "an integer", float: "a number"}
_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def allowed_values(annotation: Any, metadata: Iterable[Any] = ()) -> str | None:
    """What a value of a field or option may be, in words ("an integer >= 1 and <= 64"), for numbers, booleans and
    sections; None for the types whose pydantic message already says it (``Literal``: "Input should be 'a' or 'b'")."""
    if get_origin(annotation) is Annotated:
        annotation, *extra = get_args(annotation)
        metadata = [*extra, *metadata]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping with keys {', '.join(annotation.model_fields)}"
    args = get_args(annotation)
    if len(args) == 2 and type(None) in args:  # X | None
        inner = allowed_values(next(a for a in args if a is not type(None)), metadata)
        return inner and f"{inner}, or null"
    if annotation not in _KINDS:
        return None
    constraints = [c for m in metadata for c in (m if isinstance(m, GroupedMetadata) else [m])]
    bounds = [f"{op} {getattr(c, name)}" for c in constraints for name, op in _BOUNDS.items() if hasattr(c, name)]
    finite = annotation is float and any(getattr(c, "allow_inf_nan", True) is False for c in constraints)
    return " ".join(["a finite number" if finite else _KINDS[annotation], " and ".join(bounds)]).strip()


def _option_error(key: str, message: str) -> PydanticCustomError:
    """An error on one key (a strategy option, or a key checked against others), reported under that key (``key`` is
    relative to where it is raised)."""
    return PydanticCustomError("strategy_option", "{message}", {"option": key, "message": message})


def _model(annotation: Any) -> Any:
    """The section model an annotation holds (``OneShotParams | None`` holds OneShotParams), else the annotation."""
    models = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return models[0] if len(models) == 1 else annotation


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    model: Any = Params
    field = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        model = _model(field.annotation)
    return field


def _one_line(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "strategy_option":
        return f"{path}: {key + '.' if loc else ''}{first['ctx']['option']}: {first['msg']}"
    if first["type"] == "extra_forbidden":
        section = _field_at(loc[:-1])
        allowed = (_model(section.annotation) if section else Params).model_fields
        return f"{path}: unknown key {key}; allowed keys here: {', '.join(allowed)}"
    field = _field_at(loc)
    allowed = first["type"] != "value_error" and field and allowed_values(field.annotation, field.metadata)
    message = f"must be {allowed}" if allowed else first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    return f"{path}: {key}: {message}" + ("" if isinstance(got, (dict, list)) else f" (got {got!r})")


class _DuplicateKey(yaml.YAMLError):
    pass


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice is an error (PyYAML keeps the last one silently), and ``1e-3`` is a
    number, as in YAML 1.2 and DVC (PyYAML follows YAML 1.1, where a float needs a dot: ``1.0e-3``)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._prefix: dict[int, str] = {}  # id of a node -> the dotted key of its children, "search."

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        prefix, lines = self._prefix.get(id(node), ""), {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # keys merged in with `<<: *defaults` may be overridden
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            if isinstance(key, Hashable) and key in lines:
                raise _DuplicateKey(f"key {prefix}{key} given twice: at line {lines[key]} and again at line {line}; "
                                    "each key may appear once")
            lines[key] = line
            self._prefix[id(value_node)] = f"{prefix}{key}."
        return super().construct_mapping(node, deep)

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:
        for i, item in enumerate(node.value):
            self._prefix[id(item)] = f"{self._prefix.get(id(node), '')}{i}."
        return super().construct_sequence(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raises UserError with one line naming the bad key."""
    path = Path(path)
    sections = ", ".join(Params.model_fields)
    if not path.is_file():
        raise UserError(f"{path}: no such params file")
    try:
        raw = yaml.load(path.read_bytes(), Loader=_Loader)  # a SafeLoader
    except _DuplicateKey as exc:
        raise UserError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{path}: not valid YAML{where}: {problem or first_line(exc)}") from None
    # An empty file would otherwise run every stage on the defaults without a word.
    if raw is None or raw == {}:
        raise UserError(f"{path}: is empty; it must set at least one of the sections {sections}")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: top level must be a mapping with keys: {sections}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_one_line(path, exc)) from None
