"""params.yaml, validated before any work is done.

Every stage reads its section through ``load_params``; a mistake becomes one ``UserError`` line that names the key
and the allowed values (the CLI and the flows turn it into exit code 2).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from nas.errors import UserError

DATASETS = ("digits", "mnist5k", "mnist", "fashion_mnist", "cifar10", "cifar100", "svhn")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    dataset: Literal[DATASETS] = "digits"  # type: ignore[valid-type]
    root: str = "data/raw"
    out: str = "data/prepared"
    download: bool = True
    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    # Used only by datasets that ship no test split of their own (digits, mnist5k).
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    seed: int = Field(0, ge=0)


class TrainParams(Section):
    """Training hyperparameters shared by the search's estimator and the retrain stage."""

    epochs: int = Field(ge=1, le=10_000)
    batch_size: int = Field(64, ge=1, le=65_536)
    lr: float = Field(0.05, gt=0.0, le=10.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0, le=1.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    warmup_epochs: int = Field(0, ge=0, le=10_000)
    # auto: random crop (padding 4) + horizontal flip for CIFAR and SVHN, none for digits and MNIST-like data
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


class SearchParams(TrainParams):
    space: Literal["nb201", "macro"] = "nb201"
    strategy: str = "regularized_evolution"
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    n_trials: int = Field(20, ge=1, le=1_000_000)
    epochs: int = Field(4, ge=1, le=10_000)
    channels: int = Field(8, ge=1, le=1024)
    cells_per_stage: int = Field(1, ge=1, le=64)
    seed: int = Field(0, ge=0)
    storage: str = "sqlite:///optuna.db"
    study_name: str | None = None

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        from nas.strategies import resolve

        return resolve(name)

    @field_validator("strategy_options")
    @classmethod
    def _known_options(cls, options: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        from nas.strategies import strategy_parameters

        name = info.data.get("strategy")
        if name is None:  # the strategy itself was invalid and is reported
            return options
        allowed = strategy_parameters(name)
        for key in options:
            if key not in allowed:
                raise ValueError(f"{key!r} is not an option of {name}; allowed: {', '.join(allowed) or 'none'}")
        return options

    @model_validator(mode="after")
    def _strategy_can_be_built(self) -> SearchParams:
        """Values of the options (and options a strategy cannot do without) are checked by building it once."""
        from nas.spaces import SPACES
        from nas.strategies import make_sampler

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's experimental-feature notices
                make_sampler(self.strategy, SPACES[self.space], 0, self.strategy_options)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"strategy_options: bad value for {self.strategy}: {exc}") from None
        return self


class RetrainParams(TrainParams):
    epochs: int = Field(30, ge=1, le=10_000)
    warmup_epochs: int = Field(2, ge=0, le=10_000)
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    channels: int = Field(16, ge=1, le=1024)
    cells_per_stage: int = Field(2, ge=1, le=64)
    seed: int = Field(0, ge=0)


class TrackingParams(Section):
    # MLFLOW_TRACKING_URI, when set, wins over this.
    uri: str = "sqlite:///mlflow.db"
    experiment: str = Field("nas", min_length=1)
    model_name: str = Field("nas-model", min_length=1)


class Params(Section):
    data: DataParams = Field(default_factory=DataParams)
    search: SearchParams = Field(default_factory=SearchParams)
    retrain: RetrainParams = Field(default_factory=RetrainParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    model: Any = Params
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            break
        model = field.annotation
    return list(model.model_fields)


def _one_line(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        return f"{path}: unknown key {key}; allowed keys here: {', '.join(_fields_at(loc[:-1]))}"
    message = first["msg"].removeprefix("Value error, ")
    got = first.get("input")
    return f"{path}: {key}: {message}" + ("" if isinstance(got, (dict, list)) else f" (got {got!r})")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raises UserError with one line naming the bad key."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such params file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: top level must be a mapping with keys: {', '.join(Params.model_fields)}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise UserError(_one_line(path, exc)) from None

