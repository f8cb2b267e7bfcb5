"""Low-fidelity performance estimation by training (Elsken et al. 2019, §4): each candidate is trained briefly at a
reduced width and depth, and its validation accuracy after ``epochs`` is its score. The learning curve is kept in the
trial log (Optuna's intermediate values), where the pruners and learning-curve extrapolation read it.

The other estimators of Elsken et al. §4 / White et al. §3 live beside this one: ``curves`` (learning-curve
extrapolation), ``zero_cost`` (zero-cost proxies), ``inheritance`` (weight inheritance by network morphisms) and
``weight_sharing`` (one-shot supernets and a hypernetwork).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from nas.data import PreparedData
from nas.estimation.cost import count_params
from nas.spaces import NetworkConfig
from nas.training import TrainConfig, init_model, train
from nas.training.loop import EpochCallback


@dataclass(frozen=True)
class Result:
    val_accuracy: float
    learning_curve: tuple[float, ...]
    train_loss: tuple[float, ...]
    n_params: int
    seconds: float


def estimate(
    arch: Hashable,
    space: Any,
    data: PreparedData,
    network: NetworkConfig,
    config: TrainConfig,
    callbacks: Sequence[EpochCallback] = (),
    model: nn.Module | None = None,
) -> Result:
    """Train ``arch`` built at ``network`` size with ``config``; deterministic for a given ``config.seed`` on CPU.

    Args:
        model: the network to train, in place (one that inherited weights, ``nas.estimation.inheritance``); None:
            ``arch`` built and initialised from ``config.seed``.
    """
    if model is None:
        model = init_model(lambda: space.build(arch, network), config.seed)
    metrics = train(model, data, config, callbacks)
    return Result(
        val_accuracy=metrics["val_accuracy"][-1],
        learning_curve=tuple(metrics["val_accuracy"]),
        train_loss=tuple(metrics["train_loss"]),
        n_params=count_params(model),
        seconds=metrics["seconds"],
    )
