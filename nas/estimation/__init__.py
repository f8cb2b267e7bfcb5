"""Performance estimators: ``estimate(arch, ...) -> Result``."""

from nas.estimation.training_estimator import Result, estimate

__all__ = ["Result", "estimate"]
