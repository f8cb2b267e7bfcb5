"""Performance estimators: ``estimate(arch, ...) -> Result``, and the objectives a search can measure.

The estimators are loaded on first use: ``nas.config`` reads the objectives (``nas.estimation.objectives``, plain
data) to validate params.yaml without importing torch.
"""

from typing import Any

__all__ = ["Result", "estimate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nas.estimation import training_estimator

        return getattr(training_estimator, name)
    raise AttributeError(f"module 'nas.estimation' has no attribute {name!r}")
