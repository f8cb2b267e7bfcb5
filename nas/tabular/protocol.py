"""The NAS-Bench-201 search protocol (Dong & Yang 2020, Table 5) run against a tabular benchmark.

A strategy sees only ``val_acc_12`` and pays ``train_time_12_s`` of simulated time for each architecture it has not
evaluated before in the run; the run stops when the next new evaluation would exceed the budget, and reports
``test_acc_200`` of the architecture with the best ``val_acc_12`` seen. ``test_acc_200`` is never a signal.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.strategies.base import Strategy
from nas.tabular.benchmark import TabularBenchmark


@dataclass(frozen=True)
class ProtocolRun:
    arch: str
    val_acc_12: float
    test_acc_200: float
    queries: int  # distinct architectures paid for
    sim_time_s: float
    # (simulated seconds, test_acc_200 of the best-by-signal architecture so far) after each paid evaluation
    anytime: tuple[tuple[float, float], ...]


def run_protocol(strategy: Strategy, bench: TabularBenchmark, budget_s: float = 12_000.0,
                 max_repeats: int = 200) -> ProtocolRun:
    """One run of ``strategy`` under the protocol.

    Args:
        max_repeats: a strategy that proposes only architectures it has already seen (those are free) this many
            times in a row has converged: the run ends there.
    """
    seen: dict = {}
    sim_time, best_arch, anytime, repeats = 0.0, None, [], 0
    while repeats < max_repeats:
        arch = strategy.ask()
        repeats = repeats + 1 if arch in seen else 0
        if arch not in seen:
            entry = bench[arch]
            if sim_time + entry.train_time_12_s > budget_s:
                break
            sim_time += entry.train_time_12_s
            seen[arch] = entry.val_acc_12
            if best_arch is None or entry.val_acc_12 > seen[best_arch]:
                best_arch = arch
            anytime.append((sim_time, bench[best_arch].test_acc_200))
        strategy.tell(arch, seen[arch])
    if best_arch is None:
        raise ValueError(f"budget {budget_s} s buys no evaluation")
    best = bench[best_arch]
    return ProtocolRun(str(best_arch), best.val_acc_12, best.test_acc_200, len(seen), sim_time, tuple(anytime))
