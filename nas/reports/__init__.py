"""Reports: plots and tables written under reports/ and logged to MLflow."""

from nas.reports.plots import architecture_plot, cell_plot, layer_plot, search_progress_plot
from nas.reports.search_report import write_search_reports

__all__ = ["architecture_plot", "cell_plot", "layer_plot", "search_progress_plot", "write_search_reports"]
