"""The search loop (over an Optuna study), its pruners and Pareto fronts, and the search stage.

The loop's names are loaded on first use: the trial runner (``nas.execution.trial``) imports the pruners from this
package, and the loop imports the trial runner.
"""

from typing import Any

__all__ = ["TrialRecord", "open_study", "records", "run_search", "settle"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nas.search import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'nas.search' has no attribute {name!r}")
