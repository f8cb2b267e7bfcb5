"""Tabular benchmarks (zero-cost performance estimation) and the protocol that compares strategies on them."""

from nas.tabular.benchmark import NB201_CIFAR10, Entry, TabularBenchmark
from nas.tabular.protocol import ProtocolRun, run_protocol

__all__ = ["NB201_CIFAR10", "Entry", "ProtocolRun", "TabularBenchmark", "run_protocol"]
