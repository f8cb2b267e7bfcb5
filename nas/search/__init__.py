"""The search loop (over an Optuna study) and the search stage."""

from nas.search.runner import TrialRecord, open_study, records, run_search, settle

__all__ = ["TrialRecord", "open_study", "records", "run_search", "settle"]
