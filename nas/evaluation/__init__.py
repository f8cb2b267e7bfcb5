"""Evaluation of the retrained model."""

from nas.evaluation.evaluate import count_flops, latency_ms, evaluate

__all__ = ["count_flops", "latency_ms", "evaluate"]
