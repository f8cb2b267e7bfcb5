"""Reports: plots and tables written under reports/ and logged to MLflow."""

from nas.reports.plots import (
    architecture_plot,
    cell_plot,
    hypervolume_plot,
    layer_plot,
    pareto_front_plot,
    search_progress_plot,
    trials_plot,
)
from nas.reports.run_report import without_images, write_report
from nas.reports.search_report import search_summary, top_trials, write_search_reports

__all__ = ["architecture_plot", "cell_plot", "hypervolume_plot", "layer_plot", "pareto_front_plot",
           "search_progress_plot", "search_summary", "top_trials", "trials_plot", "without_images", "write_report",
           "write_search_reports"]
