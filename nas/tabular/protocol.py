"""The NAS-Bench-201 search protocol (Dong & Yang 2020, Table 5) run against a tabular benchmark.

Single fidelity (the paper's protocol): a strategy sees only ``val_acc_12`` and pays ``train_time_12_s`` of
simulated time for each architecture it has not evaluated before in the run; the run stops when the next new
evaluation would exceed the budget, and reports ``test_acc_200`` of the architecture with the best ``val_acc_12``
seen. A ``Proposal``'s budget is ignored: everything is evaluated at 12 epochs. ``test_acc_200`` is never a signal.

Multi fidelity (the table's README: "a multi-fidelity strategy may also look at ``val_acc_200``, paying
``train_time_12_s`` x 200/12 for it"): ``ask`` may return ``Proposal(arch, budget)``; a budget <= 12 buys
``val_acc_12``, a larger one ``val_acc_200``, and a plain architecture is a 12-epoch evaluation. Each (architecture,
fidelity) pair is paid once per run; asking it again is free and is told the same value. A strategy that proposed
a ``Proposal`` is told ``Observation(arch, (value,), budget)`` with the budget it got (12 or 200), others
``tell(arch, value)``. The reported architecture is the one with the best signal at the highest fidelity the run
reached: the best ``val_acc_200`` among those evaluated at 200 epochs if any, else the best ``val_acc_12``
(accuracies after 12 and after 200 epochs are not comparable, so the two are never ranked together).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.strategies.base import Observation, Proposal, unpack
from nas.tabular.benchmark import TabularBenchmark

FIDELITIES = ("single", "multi")
LOW, HIGH = 12, 200  # the table's two fidelities, in epochs


@dataclass(frozen=True)
class ProtocolRun:
    arch: str
    val_acc_12: float  # of the reported architecture (the table's, even if the run evaluated it only at 200 epochs)
    test_acc_200: float
    queries: int  # architectures paid for at 12 epochs
    sim_time_s: float
    # (simulated seconds, test_acc_200 of the architecture reported at that point) after each paid evaluation
    anytime: tuple[tuple[float, float], ...]
    queries_200: int = 0  # architectures paid for at 200 epochs (multi fidelity only)


def run_protocol(strategy: Any, bench: TabularBenchmark, budget_s: float = 12_000.0, max_repeats: int = 200,
                 fidelity: str = "single") -> ProtocolRun:
    """One run of ``strategy`` under the protocol.

    Args:
        max_repeats: a strategy that proposes only evaluations already paid for (those are free) this many times in
            a row has converged: the run ends there.
        fidelity: "single" (12 epochs only) or "multi" (12 or 200 epochs, as a ``Proposal``'s budget asks).
    """
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity {fidelity!r}: allowed {', '.join(FIDELITIES)}")
    paid: dict = {}  # (arch, epochs) -> the signal
    best: dict[int, Any] = {}  # epochs -> the architecture with the best signal at that fidelity
    sim_time, anytime, repeats = 0.0, [], 0
    while repeats < max_repeats:
        proposal = strategy.ask()
        arch, budget = unpack(proposal)
        epochs = HIGH if fidelity == "multi" and budget is not None and budget > LOW else LOW
        key = (arch, epochs)
        repeats = repeats + 1 if key in paid else 0
        if key not in paid:
            entry = bench[arch]
            # Multiplied only at 200 epochs: single fidelity charges exactly what it always did.
            cost = entry.train_time_12_s * HIGH / LOW if epochs == HIGH else entry.train_time_12_s
            if sim_time + cost > budget_s:
                break
            sim_time += cost
            paid[key] = entry.val_acc_200 if epochs == HIGH else entry.val_acc_12
            if epochs not in best or paid[key] > paid[(best[epochs], epochs)]:
                best[epochs] = arch
            anytime.append((sim_time, bench[best[max(best)]].test_acc_200))
        if isinstance(proposal, Proposal):
            strategy.observe(Observation(arch, (paid[key],), float(epochs)))
        else:
            strategy.tell(arch, paid[key])
    if not best:
        raise ValueError(f"budget {budget_s} s buys no evaluation")
    reported = best[max(best)]
    entry = bench[reported]
    counts = [sum(e == epochs for _, e in paid) for epochs in (LOW, HIGH)]
    return ProtocolRun(str(reported), entry.val_acc_12, entry.test_acc_200, counts[0], sim_time, tuple(anytime),
                       counts[1])
