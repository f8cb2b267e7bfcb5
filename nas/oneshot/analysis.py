"""What a one-shot search's derived architectures show: the share of parameter-free operations, the symptom of
DARTS's documented collapse (Zela et al., "Understanding and Robustifying Differentiable Architecture Search", ICLR
2020; Dong & Yang 2020, NAS-Bench-201 §5: DARTS converges to cells of skip connections)."""

from __future__ import annotations

from typing import Any

# Operations with no weights: the ones a collapsing supernet comes to prefer.
PARAMETER_FREE = frozenset({"none", "skip_connect", "avg_pool_3x3", "max_pool_3x3"})


def parameter_free_share(arch: Any) -> float:
    """Fraction of the derived cell's edges whose op has no weights: NB201's six edges, or the DARTS normal cell's
    eight (where the collapse shows; the reduction cell is mostly pooling by design)."""
    ops = list(arch.ops) if hasattr(arch, "ops") else [op for op, _ in arch.normal]
    return sum(op in PARAMETER_FREE for op in ops) / len(ops)
