"""Tabular benchmarks (performance estimation by table lookup: a query returns the accuracy a full training run
measured, at the cost it recorded) and the protocol that compares strategies on them. Not to be confused with zero-cost
proxies (``nas.estimation.zero_cost``), which score an untrained network."""

from nas.tabular.benchmark import NB201_CIFAR10, Entry, TabularBenchmark
from nas.tabular.protocol import ProtocolRun, run_protocol

__all__ = ["NB201_CIFAR10", "Entry", "ProtocolRun", "TabularBenchmark", "run_protocol"]
