"""The strategy contract: ``ask() -> arch``, ``observe(Observation)``.

A strategy never trains, logs or sleeps, and draws every random choice from its own ``numpy.random.Generator``.
Because ``ask``/``observe`` are its only inputs, its state is rebuilt from a trial log by replaying the log through
them (``replay``): a search killed at any point continues exactly as it would have without the interruption.

An observation is what a trial measured (Optuna's ``after_trial(study, trial, state, values)`` is the model): the
values, one per objective in the study's order and directions, the budget they were measured at, and the state.
Single-objective strategies implement ``tell(arch, score)`` (higher is better) and the base class turns every
observation into one: a pruned trial is told the accuracy it had when stopped (below what it would have reached,
and it was stopped for being behind), a failed one the lowest accuracy there is. Multi-objective strategies
(``MultiObjectiveStrategy``) override ``observe`` and see the whole tuple. A multi-fidelity strategy may return a
``Proposal`` (an architecture and the budget to measure it at) from ``ask``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np

# What a single-objective strategy is told for a failed trial: the lowest accuracy there is.
FAILED_SCORE = 0.0
State = Literal["complete", "pruned", "failed"]


@dataclass(frozen=True)
class Observation:
    """One trial's outcome as a strategy sees it.

    Attributes:
        values: one per objective, in the study's objective order, as measured (not negated: the directions say
            which way is better). A pruned trial holds the accuracy of its last epoch (and its other objectives,
            which are known before training); a failed one holds none.
        budget: the fidelity the values were measured at (epochs trained, or the table's epochs); None: the search's
            full budget.
        feasible: False when the architecture breaks a hard constraint (``search.constraints``); multi-objective
            strategies rank it below every feasible one (Deb et al. 2002's constrained domination).
    """

    arch: Hashable
    values: tuple[float, ...]
    budget: float | None = None
    state: State = "complete"
    feasible: bool = True


class Proposal(NamedTuple):
    """What a multi-fidelity strategy's ``ask`` returns: the architecture and the budget to measure it at."""

    arch: Hashable
    budget: float


def unpack(proposal: Any) -> tuple[Hashable, float | None]:
    """``(arch, budget)`` of what ``ask`` returned (a budget of None: the search's full budget)."""
    return (proposal.arch, proposal.budget) if isinstance(proposal, Proposal) else (proposal, None)


class Strategy(ABC):
    """Base of the native strategies. Subclasses implement ``ask`` and usually ``tell``."""

    def __init__(self, space: Any, seed: int | np.random.Generator = 0) -> None:
        self.space = space
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        # The architecture the last ``ask``'s proposal was derived from (a mutation's parent, a neighbour's centre),
        # None for a fresh sample: a child may inherit its parent's weights (``search.inherit``).
        self.parent: Hashable | None = None

    @abstractmethod
    def ask(self) -> Hashable:
        """Propose the next architecture to evaluate."""

    def tell(self, arch: Hashable, score: float) -> None:
        """Receive the score (higher is better) of an architecture this strategy proposed."""

    def observe(self, observation: Observation) -> None:
        """Receive a trial's outcome; single-objective strategies get it as ``tell(arch, score)`` (module doc)."""
        failed = observation.state == "failed" or not observation.values
        self.tell(observation.arch, FAILED_SCORE if failed else observation.values[0])

    def replay(self, history: Iterable[Observation | tuple[Hashable, float]]) -> None:
        """Rebuild state from a log of observations (or ``(arch, score)`` pairs) in the order they were evaluated.

        Each entry replays the ``ask`` that proposed it, so the random stream ends where the original run's did,
        then tells the logged architecture (the log, not the replayed proposal, is the truth).
        """
        for entry in history:
            self.ask()
            self.observe(entry if isinstance(entry, Observation) else Observation(entry[0], (float(entry[1]),)))


class MultiObjectiveStrategy(Strategy):
    """Base of the strategies that see every objective. ``directions`` ("maximize"/"minimize", one per objective, in
    the study's order) are given by whoever runs the strategy; ``cheap``, when given, returns the objectives known
    without training an architecture (parameters, FLOPs, latency) as a tuple in the same order with None for the
    others (accuracy), so a strategy can screen candidates before paying for them (LEMONADE)."""

    def __init__(self, space: Any, seed: int | np.random.Generator = 0,
                 directions: tuple[str, ...] = ("maximize",), cheap: Any = None) -> None:
        super().__init__(space, seed)
        if not directions or any(d not in ("maximize", "minimize") for d in directions):
            raise ValueError(f"directions must be 'maximize' or 'minimize', one per objective (got {directions!r})")
        self.directions, self.cheap = tuple(directions), cheap
        # Multiplying values by this makes every objective one to minimise.
        self.signs = np.array([-1.0 if d == "maximize" else 1.0 for d in self.directions])

    @abstractmethod
    def observe(self, observation: Observation) -> None:
        """Receive a trial's outcome, every objective of it."""

    def tell(self, arch: Hashable, score: float) -> None:
        self.observe(Observation(arch, (float(score),)))

    def has_values(self, observation: Observation) -> bool:
        """Whether ``observation`` has values to learn from (a failed trial has none); raises ValueError when it has
        not one per objective."""
        if observation.state == "failed" or not observation.values:
            return False
        if len(observation.values) != len(self.directions):
            raise ValueError(f"observation has {len(observation.values)} values for {len(self.directions)} "
                             f"objectives {self.directions}")
        return True

    def costs(self, values: tuple[float, ...]) -> np.ndarray:
        """``values`` as costs: every objective to minimise."""
        return np.asarray(values, dtype=float) * self.signs


class SurrogateStrategy(Strategy):
    """Base of the model-based strategies: ``initial`` random architectures, then batches of ``batch`` proposals,
    one ``_propose`` (one refit of the surrogate) per batch, skipping any already evaluated."""

    def __init__(self, space: Any, seed: int | np.random.Generator, initial: int, batch: int) -> None:
        super().__init__(space, seed)
        self.initial, self.batch = initial, batch
        self.history: dict[Hashable, float] = {}
        self.queue: list[Hashable] = []
        self.asked = 0

    @abstractmethod
    def _propose(self) -> list[Hashable]:
        """The next batch, best first (at least one architecture)."""

    def ask(self) -> Hashable:
        self.asked += 1
        if self.asked <= self.initial or len(self.history) < 2:
            return self.space.sample(self.rng)
        while self.queue:
            arch = self.queue.pop(0)
            if arch not in self.history:
                return arch
        self.queue = self._propose()
        return self.queue.pop(0)

    def tell(self, arch: Hashable, score: float) -> None:
        self.history[arch] = score

    def best(self, k: int) -> list[Hashable]:
        """The ``k`` best architectures evaluated so far, best first."""
        return sorted(self.history, key=lambda a: -self.history[a])[:k]

    def thompson(self, pool: list[Hashable], mean: np.ndarray, std: np.ndarray) -> list[Hashable]:
        """Independent Thompson sampling: the ``batch`` candidates with the highest draw from their own predictive
        normal (White, Neiswanger & Savani 2021)."""
        draws = self.rng.normal(mean, std + 1e-9)
        return [pool[i] for i in np.argsort(-draws, kind="stable")[: self.batch]]
