"""BANANAS (White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural Architectures for Neural
Architecture Search", AAAI 2021).

The one idea: Bayesian optimisation whose surrogate is an ensemble of small MLPs on the path encoding of the
architecture; candidates are mutations of the best architectures so far, and the next ones to evaluate are picked
by independent Thompson sampling (one draw from each candidate's predictive normal, the ensemble's mean and
spread). The ensemble is refitted once per batch of proposals, as in the paper.

The candidates are every unevaluated one-edit neighbour of the ``parents`` best architectures (the paper's
mutation acquisition optimiser taken exhaustively), topped up with random mutations to at least ``candidates``.

Deviations from the reference code (naszilla): each MLP is scikit-learn's ``MLPRegressor`` with 3 layers of 20,
squared loss, its default L2 penalty and 200 iterations (naszilla: 10 layers of 20, absolute loss, 150 epochs at
batch 32); candidates come from the 5 best architectures, not the best one alone. On NB201 the neighbourhood of 5
parents has about 120 members, so the default ``candidates=100`` adds no random mutations. Measured on the NB201
protocol: 94.26 mean test accuracy (10 seeds).
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from typing import Annotated

import numpy as np
from annotated_types import Ge
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from nas.strategies.base import SurrogateStrategy


class BANANAS(SurrogateStrategy):
    """Args:
        initial: random architectures before the first model.
        batch: proposals per refit of the ensemble.
        candidates: at least this many candidates are scored by the ensemble per refit.
        parents: how many of the best architectures give their neighbours as candidates.
        ensemble: MLPs in the ensemble.
    """

    def __init__(self, space, seed=0, initial: Annotated[int, Ge(1)] = 10, batch: Annotated[int, Ge(1)] = 10,
                 candidates: Annotated[int, Ge(1)] = 100, parents: Annotated[int, Ge(1)] = 5,
                 ensemble: Annotated[int, Ge(2)] = 5) -> None:
        super().__init__(space, seed, initial, batch)
        for name, value in (("initial", initial), ("batch", batch), ("candidates", candidates), ("parents", parents)):
            if value < 1:
                raise ValueError(f"{name} must be an integer >= 1")
        if ensemble < 2:
            raise ValueError("ensemble must be an integer >= 2")
        if batch > candidates:
            raise ValueError(f"batch must be at most candidates ({candidates})")
        self.candidates, self.parents, self.ensemble = candidates, parents, ensemble

    def _propose(self) -> list[Hashable]:
        archs = list(self.history)
        x = np.stack([self.space.path_features(a) for a in archs])
        y = np.array([self.history[a] for a in archs])
        scale = y.std() or 1.0
        y = (y - y.mean()) / scale
        best = self.best(self.parents)
        pool = {n: None for a in best for n in self.space.neighbors(a) if n not in self.history}
        for _ in range(self.candidates * 20 if len(pool) < self.candidates else 0):
            child = self.space.mutate(best[int(self.rng.integers(len(best)))], self.rng)
            if child not in self.history:
                pool[child] = None
                if len(pool) == self.candidates:
                    break
        if not pool:  # every mutation of the best was evaluated: explore
            return [self.space.sample(self.rng)]
        pool_archs = list(pool)
        features = np.stack([self.space.path_features(a) for a in pool_archs])
        predictions = np.stack([self._fit(x, y).predict(features) for _ in range(self.ensemble)])
        mean, std = predictions.mean(axis=0), predictions.std(axis=0)
        return self.thompson(pool_archs, mean, std)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> MLPRegressor:
        model = MLPRegressor(hidden_layer_sizes=(20, 20, 20), learning_rate_init=0.01, max_iter=200,
                             random_state=int(self.rng.integers(2**31)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return model.fit(x, y)
