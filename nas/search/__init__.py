"""The search loop (over an Optuna study) and the search stage."""

from nas.search.runner import TrialRecord, fail_orphans, open_study, records, run_search

__all__ = ["TrialRecord", "fail_orphans", "open_study", "records", "run_search"]
