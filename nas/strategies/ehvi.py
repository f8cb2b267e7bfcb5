"""Multi-objective Bayesian optimisation by expected hypervolume improvement (EHVI: Emmerich, Giannakoglou &
Naujoks, "Single- and Multiobjective Evolutionary Optimization Assisted by Gaussian Random Field Metamodels", IEEE
TEVC 2006), with the objectives known before training taken exactly (the cheap objectives of LEMONADE, Elsken et
al. 2019).

The one idea: only one objective, the accuracy, is uncertain before a candidate is trained; its parameters or FLOPs
are known. So a Gaussian process over the architecture's encoding models the accuracy alone, and the hypervolume a
candidate would add to the front is a function of one unknown: with the cheap objectives fixed at the candidate's,
the slice of the objective space it would newly dominate at accuracy level ``t`` has a volume ``A(t)`` that is a step
function of ``t`` (it shrinks at each front member's accuracy), and the improvement is its integral from the
candidate's accuracy to the reference point. Its expectation under the GP's predictive distribution is taken by
Gauss-Hermite quadrature (128 nodes). Each refit scores a pool of random architectures and of every one-edit
neighbour of the front, and proposes the pool's best; with one objective the improvement is the accuracy gained over
the best, and EHVI is expected improvement (Jones, Schonlau & Welch 1998).

Choices the papers leave open:
- The GP: an RBF kernel plus noise, hyperparameters by marginal likelihood (as ``gp_thompson``), on the space's
  one-hot encoding beside its path encoding (BANANAS's, White et al. 2021). It models the expensive objective after
  a Yeo-Johnson power transform fitted to the observations (HEBO's output warping, Cowen-Rivers et al. 2022): a few
  broken architectures (10 % accuracy) would otherwise set the scale. The quadrature nodes are mapped back through
  the inverse transform, so the improvement is measured in the objective's own units.
- The reference point: the current front's nadir plus 10 % of its range in the expensive objective (Ishibuchi et
  al. 2018), and in each cheap objective the worst value among the front and the pool plus 10 % of their range (of
  the value itself, or 1, where there is no range), so that a candidate larger than every front member can still
  improve the front (by being more accurate).
- A batch of ``batch`` proposals per refit is chosen greedily, each one added to the front at its believed value
  (the GP's predictive median, mapped back) before the next is scored: the "Kriging believer" of Ginsbourger, Le
  Riche & Carraro 2010, without refitting. Architectures asked for and not yet observed (other workers are training
  them) join the front the same way, and are never proposed again.
- A cheap objective may build the network (``CostMeasure``, ~5 ms for an NB201 network): it is computed once per
  architecture; a refit still screens ~2,000 new random candidates, some 10 s in a real search.

Measured on benchmarks/multi_objective.py's problem (NB201, accuracy against parameters, 12,000 s, ~108 evaluations;
100 runs on seeds the benchmark does not use, mean hypervolume fraction ± standard error; LEMONADE scores 0.94
there): 0.963 ± 0.002 (on the benchmark's own seeds 0.966). The settings were compared with 16 quadrature nodes
(0.967 ± 0.002), which misjudge a far tail's expectation by up to 25 %; 128 nodes are within 2 % of the closed form
at two standard deviations and score the same within the noise. With 16 nodes: the one-hot encoding alone 0.962 ±
0.004, the path encoding alone 0.80 (it cannot tell apart cells whose extra convolutions lie off every path, so it
cannot see what their parameters buy); one proposal per refit instead of five 0.962 ± 0.004; initial 5 or 20 instead
of 10 0.957 / 0.968; a pool of 6,000 random architectures 0.959; every architecture within two edits of the front in
the pool 0.960. With 128 nodes, on 100 other unused seeds (the RBF there 0.963): a Matérn 5/2 kernel 0.964; a
length scale per one-hot input (ARD, without the path encoding) 0.938, and 0.949 with Matérn 5/2. The
Weisfeiler-Lehman graph kernel of NAS-BOWL (Ru et al. 2021; subtree features at h = 2 of the cell as a graph of its
live ops), on the same seeds: its own linear kernel 0.944, an RBF on its normalised features 0.964, beside the one-hot
encoding 0.966 (+0.002 ± 0.002 over the RBF, paired), beside one-hot and paths 0.963. Dividing the
improvement by the table's training time (EHVI per second, Snoek et al. 2012, with the cost known exactly) buys 15 %
more evaluations and loses hypervolume (0.961 against 0.967). A zero-cost proxy as one more GP input (synflow,
Tanaka et al. 2020, which needs no data, of each table architecture at the table's network size; standardised log,
scaled 1 or 3 against the binary inputs), on 60 other unused seeds: 0.962 and 0.964 against 0.962 without (paired
-0.001 ± 0.005 and +0.002 ± 0.006): no gain, as among architectures of one parameter count synflow ranks their
accuracy at Spearman -0.45 to 0.24 (0.43 over the whole table, where it mostly counts parameters, 0.75).

Observations: a failed trial is only remembered as evaluated; a pruned one is modelled, and joins the front, with
the accuracy it had when stopped; an infeasible one (``feasible=False``) informs the GP but never the front.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable
from typing import Annotated

import numpy as np
from annotated_types import Ge
from scipy.stats import yeojohnson
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

from nas.search.pareto import front_mask, hypervolume
from nas.strategies.base import MultiObjectiveStrategy, Observation

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(128)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()  # probabilists' Hermite: E[f(Z)] for Z ~ N(0, 1)


def yeojohnson_inverse(x: np.ndarray, lmbda: float) -> np.ndarray:
    """The inverse of ``scipy.stats.yeojohnson`` at ``lmbda``, defined everywhere (a value beyond the transform's
    range maps to the range's end, or to a huge finite value where that end is infinite)."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    pos = x >= 0
    with np.errstate(over="ignore"):
        if abs(lmbda) < 1e-12:
            out[pos] = np.expm1(x[pos])
        else:
            out[pos] = np.power(np.maximum(x[pos] * lmbda + 1.0, 1e-300), 1.0 / lmbda) - 1.0
        if abs(lmbda - 2.0) < 1e-12:
            out[~pos] = -np.expm1(-x[~pos])
        else:
            out[~pos] = 1.0 - np.power(np.maximum(-(2.0 - lmbda) * x[~pos] + 1.0, 1e-300), 1.0 / (2.0 - lmbda))
    return out


def improvement(u: np.ndarray, cheap: np.ndarray, front_u: np.ndarray, front_cheap: np.ndarray,
                reference: np.ndarray) -> np.ndarray:
    """Hypervolume improvement of candidates at expensive cost ``u`` (``(n, q)``: n candidates, q values each) with
    cheap costs ``cheap`` (``(n, k)``), over the front ``(front_u, front_cheap)``; every objective minimised;
    ``reference``: the expensive objective's bound first, then the cheap ones'."""
    r_u, r_c = reference[0], reference[1:]
    order = np.argsort(front_u, kind="stable")
    front_u, front_cheap = front_u[order], front_cheap[order]
    edges = np.concatenate([[-np.inf], np.minimum(front_u, r_u), [r_u]])  # slice j: edges[j] <= t < edges[j + 1]
    # Candidates share cheap values (one parameter count per op mix): each slice's volume once per distinct row.
    distinct, row = np.unique(cheap, axis=0, return_inverse=True)
    out = np.zeros(u.shape)
    for j in range(len(edges) - 1):
        width = np.clip(edges[j + 1] - np.maximum(u, edges[j]), 0.0, None)  # (n, q)
        if not width.any():
            continue
        out += width * _slice_volume(distinct, front_cheap[:j], r_c)[row.reshape(-1)][:, None]
    return out


def _slice_volume(cheap: np.ndarray, dominators: np.ndarray, r_c: np.ndarray) -> np.ndarray:
    """Volume of the box from each row of ``cheap`` to ``r_c`` not dominated by a row of ``dominators``."""
    box = np.prod(np.clip(r_c - cheap, 0.0, None), axis=1)
    if len(dominators) == 0:
        return box
    if cheap.shape[1] == 0:  # one objective: any better point dominates the whole (point-sized) slice
        return np.zeros(len(cheap))
    if cheap.shape[1] == 1:
        return np.clip(np.minimum(dominators[:, 0].min(), r_c[0]) - cheap[:, 0], 0.0, None)
    return np.array([b - hypervolume(np.maximum(dominators, c), r_c) if b > 0 else 0.0 for b, c in zip(box, cheap)])


class EHVI(MultiObjectiveStrategy):
    """Args:
        initial: random architectures before the first GP.
        batch: proposals per refit.
        candidates: random architectures in each refit's pool (beside every one-edit neighbour of the front).
        directions, cheap: see ``MultiObjectiveStrategy``. With more than one objective, ``cheap`` must give every
            objective but one (the one the GP models).
    """

    def __init__(self, space, seed=0, directions: tuple[str, ...] = ("maximize",), cheap=None,
                 initial: Annotated[int, Ge(1)] = 10, batch: Annotated[int, Ge(1)] = 5,
                 candidates: Annotated[int, Ge(1)] = 2000) -> None:
        super().__init__(space, seed, directions, cheap)
        for name, value in (("initial", initial), ("batch", batch), ("candidates", candidates)):
            if value < 1:
                raise ValueError(f"{name} must be an integer >= 1")
        if len(directions) > 1 and cheap is None:
            raise ValueError("ehvi needs every objective but one known before training (parameters, FLOPs, "
                             "latency); this search states none")
        self.initial, self.batch, self.candidates = initial, batch, candidates
        self.expensive: int | None = None if cheap is not None else 0
        self.history: dict[Hashable, tuple[np.ndarray, bool]] = {}  # arch -> (costs, feasible)
        self.evaluated: set[Hashable] = set()
        self.pending: list[Hashable] = []  # asked, not yet observed (parallel workers)
        self.queue: list[Hashable] = []
        self.asked = 0
        self._cheap_seen: dict[Hashable, np.ndarray] = {}  # a cheap objective may build the network: once per arch

    def ask(self) -> Hashable:
        self.asked += 1
        if self.asked <= self.initial or len(self.history) < 2:
            arch = self.space.sample(self.rng)
        else:
            while self.queue and (self.queue[0] in self.evaluated or self.queue[0] in self.pending):
                self.queue.pop(0)
            self.queue = self.queue or self._propose()
            arch = self.queue.pop(0)
        self.pending.append(arch)
        return arch

    def observe(self, observation: Observation) -> None:
        arch = observation.arch
        if self.pending:  # the log is the truth: an unknown architecture takes the oldest pending place
            self.pending.remove(arch if arch in self.pending else self.pending[0])
        self.evaluated.add(arch)
        if not self.has_values(observation):
            return
        self.history[arch] = (self.costs(observation.values), observation.feasible)

    def _cheap_costs(self, arch: Hashable) -> np.ndarray:
        """The cheap objectives of ``arch`` as costs, in study order without the expensive one."""
        if self.cheap is None:
            return np.zeros(0)
        if arch in self._cheap_seen:
            return self._cheap_seen[arch]
        values = self.cheap(arch)
        if self.expensive is None:
            unknown = [i for i, v in enumerate(values) if v is None]
            if len(unknown) != 1:
                raise ValueError(f"ehvi needs exactly one objective not known before training; cheap gives "
                                 f"{len(unknown)} unknown of {self.directions}")
            self.expensive = unknown[0]
        keep = [i for i in range(len(self.directions)) if i != self.expensive]
        self._cheap_seen[arch] = np.array([values[i] for i in keep], dtype=float) * self.signs[keep]
        return self._cheap_seen[arch]

    def _encode(self, archs: list[Hashable]) -> np.ndarray:
        """The GP's inputs: each architecture's one-hot encoding beside its path encoding (module doc)."""
        return np.stack([np.concatenate([self.space.features(a), self.space.path_features(a)]) for a in archs])

    def _propose(self) -> list[Hashable]:
        archs = list(self.history)
        costs = np.array([self.history[a][0] for a in archs])
        self._cheap_costs(archs[0])  # settles which objective is the expensive one
        e = self.expensive
        u = costs[:, e]
        feasible = np.array([self.history[a][1] for a in archs])
        # Yeo-Johnson needs a spread; equal values are modelled as they are (normalize_y copes with a constant)
        warped, lmbda = yeojohnson(u) if np.ptp(u) > 0 else (u, 1.0)
        kernel = ConstantKernel() * RBF(3.0, (0.1, 100.0)) + WhiteKernel(1e-2, (1e-6, 1.0))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gp = GaussianProcessRegressor(kernel, normalize_y=True).fit(self._encode(archs), warped)

        on_front = front_mask(costs[feasible]) if feasible.any() else []
        taken = self.evaluated.union(self.pending)
        pool: dict[Hashable, None] = {}
        for arch in (a for a, on in zip([a for a, f in zip(archs, feasible) if f], on_front) if on):
            pool.update((n, None) for n in self.space.neighbors(arch) if n not in taken)
        for _ in range(self.candidates):
            arch = self.space.sample(self.rng)
            if arch not in taken:
                pool[arch] = None
        if not pool:
            return [self.space.sample(self.rng)]
        pool_archs = list(pool)
        mean, std = gp.predict(self._encode(pool_archs), return_std=True)
        # (n, q) costs at the quadrature nodes; a tail beyond ten ranges of what was seen is cut there
        span = np.ptp(u) or 1.0
        nodes = np.clip(yeojohnson_inverse(mean[:, None] + std[:, None] * _NODES[None, :], lmbda),
                        u.min() - 10 * span, u.max() + 10 * span)
        believed = yeojohnson_inverse(mean, lmbda)  # the predictive median, in the objective's units
        pool_cheap = np.stack([self._cheap_costs(a) for a in pool_archs])

        front = costs[feasible][on_front] if feasible.any() else np.zeros((0, costs.shape[1]))
        front_u, front_cheap = front[:, e], np.delete(front, e, axis=1)
        base_u = front_u if len(front_u) else u
        r_u = base_u.max() + 0.1 * (np.ptp(base_u) or abs(base_u.max()) or 1.0)
        all_cheap = np.vstack([front_cheap, pool_cheap])
        r_c = all_cheap.max(axis=0) + 0.1 * np.where(np.ptp(all_cheap, axis=0) > 0, np.ptp(all_cheap, axis=0), 1.0)
        reference = np.concatenate([[r_u], r_c])
        if self.pending:  # what other workers are training counts as found, at its believed value
            at = yeojohnson_inverse(gp.predict(self._encode(self.pending)), lmbda)
            front_u = np.append(front_u, at)
            front_cheap = np.vstack([front_cheap, np.stack([self._cheap_costs(a) for a in self.pending])])

        chosen: list[int] = []
        for _ in range(min(self.batch, len(pool_archs))):
            keep = front_mask(np.column_stack([front_u, front_cheap])) if len(front_u) else []
            front_u, front_cheap = front_u[keep], front_cheap[keep]
            gain = improvement(nodes, pool_cheap, front_u, front_cheap, reference) @ _WEIGHTS
            gain[chosen] = -np.inf
            ties = np.flatnonzero(gain == gain.max())  # several only where no candidate gains: then at random
            best = int(ties[self.rng.integers(len(ties))]) if len(ties) > 1 else int(ties[0])
            chosen.append(best)
            # Kriging believer: the chosen one joins the front at its believed value.
            front_u = np.append(front_u, believed[best])
            front_cheap = np.vstack([front_cheap, pool_cheap[best]])
        return [pool_archs[i] for i in chosen]
