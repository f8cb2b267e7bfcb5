"""The objectives a search can ask for, as plain data: what each measures, its usual direction, its unit, and whether
it needs the candidate trained (``val_accuracy``) or is known once the network is built (the hardware costs that
``nas.estimation.cost`` measures). This module imports nothing heavy, so ``nas.config`` can validate
``search.objectives`` without importing torch.

    >>> OBJECTIVES["latency_ms"].direction, OBJECTIVES["val_accuracy"].needs_training
    ('minimize', True)
"""

from __future__ import annotations

from typing import NamedTuple


class Objective(NamedTuple):
    direction: str  # the usual one: "maximize" | "minimize"
    unit: str
    needs_training: bool
    description: str


OBJECTIVES: dict[str, Objective] = {
    "val_accuracy": Objective("maximize", "fraction", True, "validation accuracy after the search's training"),
    "params": Objective("minimize", "count", False, "trainable parameters"),
    "params_m": Objective("minimize", "millions", False, "trainable parameters, in millions"),
    "flops": Objective("minimize", "FLOPs", False,
                       "FLOPs of one forward pass at batch size 1 (2 x multiply-accumulates of convolutions and "
                       "matrix products; pooling, activations and normalisation not counted)"),
    "mflops": Objective("minimize", "MFLOPs", False, "flops, in millions"),
    "latency_ms": Objective("minimize", "ms", False,
                            "median wall-clock time of one forward pass on the target device, at the configured batch "
                            "size and thread count"),
}

# Known before training, so they can rule a candidate out before it is trained.
CHEAP_OBJECTIVES = tuple(name for name, objective in OBJECTIVES.items() if not objective.needs_training)

__all__ = ["CHEAP_OBJECTIVES", "OBJECTIVES", "Objective"]
