"""Evaluation of the retrained model."""

from nas.evaluation.evaluate import count_flops, evaluate, latency_ms

__all__ = ["count_flops", "evaluate", "latency_ms"]
