"""Gaussian-process Bayesian optimisation with independent Thompson sampling (the GP-BO of Kandasamy, Neiswanger,
Schneider, Póczos & Xing, "Neural Architecture Search with Bayesian Optimisation and Optimal Transport", NeurIPS
2018, on the space's fixed-length encoding instead of its OTMANN distance; batches by Thompson sampling, after
Kandasamy, Krishnamurthy, Schneider & Póczos, "Parallelised Bayesian Optimisation via Thompson Sampling", AISTATS
2018). Deviation from the latter, which draws one sample of the joint posterior per proposal: each candidate gets
its own draw from its marginal predictive normal, the independent Thompson sampling of BANANAS (White et al. 2021),
which needs no n-by-n posterior over the pool.

The one idea: a GP surrogate (RBF kernel plus noise, hyperparameters by marginal likelihood) over the one-hot
encoding of the architecture; each refit scores a pool of random architectures and of the architectures within
``radius`` edits of the best ones, and the next ``batch`` to evaluate are the pool's highest draws from their own
predictive normals. Random candidates keep the search global; the two-edit neighbourhood lets it cross from a local
optimum to a better basin whose one-edit neighbours on the way are worse.

The GP is fitted to the normal scores of the ranks of the scores (output warping, as the power transform of HEBO,
Cowen-Rivers et al. 2022): a few broken architectures (10% accuracy) would otherwise set the scale and leave the
surrogate blind to the differences among good ones.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from typing import Annotated

import numpy as np
from annotated_types import Ge
from scipy.stats import norm, rankdata
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from nas.strategies.base import SurrogateStrategy


class GPThompson(SurrogateStrategy):
    """Args:
        initial: random architectures before the first GP.
        batch: proposals per refit.
        candidates: random architectures in each refit's pool.
        radius: the pool also holds every unevaluated architecture within this many edits of the best ones.
        parents: how many of the best architectures give their neighbourhoods to the pool.
    """

    def __init__(self, space, seed=0, initial: Annotated[int, Ge(1)] = 5, batch: Annotated[int, Ge(1)] = 5,
                 candidates: Annotated[int, Ge(1)] = 2000, radius: Annotated[int, Ge(0)] = 2,
                 parents: Annotated[int, Ge(1)] = 1) -> None:
        super().__init__(space, seed, initial, batch)
        for name, value in (("initial", initial), ("batch", batch), ("candidates", candidates), ("parents", parents)):
            if value < 1:
                raise ValueError(f"{name} must be an integer >= 1")
        if radius < 0:
            raise ValueError("radius must be an integer >= 0")
        self.candidates, self.radius, self.parents = candidates, radius, parents

    def _propose(self) -> list[Hashable]:
        archs = list(self.history)
        x = np.stack([self.space.features(a) for a in archs])
        scores = np.array([self.history[a] for a in archs])
        y = norm.ppf((rankdata(scores) - 0.5) / len(scores))
        frontier = self.best(self.parents)
        pool: dict[Hashable, None] = {}
        for _ in range(self.radius):
            frontier = list(dict.fromkeys(n for a in frontier for n in self.space.neighbors(a)))
            pool.update((n, None) for n in frontier if n not in self.history)
        for _ in range(self.candidates):
            arch = self.space.sample(self.rng)
            if arch not in self.history:
                pool[arch] = None
        if not pool:
            return [self.space.sample(self.rng)]
        pool_archs = list(pool)
        kernel = ConstantKernel() * RBF(3.0, (0.1, 100.0)) + WhiteKernel(1e-2, (1e-6, 1.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel, normalize_y=True).fit(x, y)
        mean, std = gp.predict(np.stack([self.space.features(a) for a in pool_archs]), return_std=True)
        return self.thompson(pool_archs, mean, std)
