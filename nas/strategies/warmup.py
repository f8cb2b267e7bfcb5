"""A strategy warm-started from given architectures: the zero-cost warm-up of Abdelfattah, Mehrotra, Dudziak & Lane
("Zero-Cost Proxies for Lightweight NAS", ICLR 2021, §5: the best of many random architectures by a zero-cost proxy,
``nas.estimation.zero_cost.warm_start``, replace a search's random start).

The first ``len(archs)`` asks still ask the inner strategy, so its random stream and counters advance exactly as if it
had proposed them, but return ``archs[i]``; every observation goes to the inner strategy, which therefore learns the
warm architectures as its own. After that the wrapper is the inner strategy. Its state is rebuilt by replay like any
strategy's (the warm asks are replayed too).

Where the inner strategy's first proposals are random samples, the warm architectures take their place: regularized
evolution's first ``population_size``; local search's ``initial``, whose best starts the first walk. Local search
needs ``initial=len(archs)`` so its walk starts from the best warm architecture with all its neighbours to visit (with
``initial=1`` it hill-climbs through the warm list and also ends at the best of it, but each warm ask after the first
takes the neighbour it consumed from its queue); the search stage makes that the default
(``SearchParams.search_defaults``).

    >>> import numpy as np
    >>> from nas.spaces import SPACES
    >>> from nas.strategies.regularized_evolution import RegularizedEvolution
    >>> warm = [SPACES["nb201"].sample(np.random.default_rng(i)) for i in range(3)]
    >>> strategy = WarmStarted(RegularizedEvolution(SPACES["nb201"], seed=0), warm)
    >>> [strategy.ask() for _ in range(3)] == warm
    True
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from nas.strategies.base import Observation, Proposal, Strategy


class WarmStarted(Strategy):
    """Args:
        inner: the strategy to warm-start (it keeps its own seed and options).
        archs: the architectures its first asks return, in order (best first, as ``warm_start`` gives them).
    """

    def __init__(self, inner: Strategy, archs: Sequence[Hashable]) -> None:
        super().__init__(inner.space, inner.rng)  # one generator: the inner's
        self.inner, self.archs, self.warm_asked = inner, tuple(archs), 0

    def ask(self) -> Hashable:
        proposal = self.inner.ask()
        self.parent = getattr(self.inner, "parent", None)  # whose weights a child inherits (search.inherit)
        if self.warm_asked >= len(self.archs):
            return proposal
        self.parent = None  # a warm architecture has none
        arch = self.archs[self.warm_asked]
        self.warm_asked += 1
        # A multi-fidelity inner strategy keeps the budget it asked for.
        return Proposal(arch, proposal.budget) if isinstance(proposal, Proposal) else arch

    def tell(self, arch: Hashable, score: float) -> None:
        self.inner.tell(arch, score)

    def observe(self, observation: Observation) -> None:
        self.inner.observe(observation)

    def __getattr__(self, name: str) -> Any:
        # Whatever else is asked of the strategy (a population, a history, the directions) is the inner's.
        if name == "inner":  # not yet set (during unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

