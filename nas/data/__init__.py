"""Datasets: loading by name, the prepare stage, and reading what it wrote."""

from nas.data.prepare import PreparedData, Split, load_prepared, normalize, prepare

__all__ = ["PreparedData", "Split", "load_prepared", "normalize", "prepare"]
