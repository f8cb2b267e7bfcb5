"""Early stopping of trials (multi-fidelity estimation, Elsken et al. 2019 §5; White et al. 2023 §2): a trial reports
its validation accuracy after every epoch and stops when it falls behind the trials before it.

With one objective these are Optuna's pruners: ``median`` (MedianPruner), ``successive_halving`` (the asynchronous
successive halving of Li et al. 2020, ASHA) and ``hyperband`` (Li et al. 2017, brackets of ASHA), over epochs
``min_epochs .. max_epochs`` with ``reduction_factor``. Optuna refuses ``Trial.report`` in a multi-objective study
(optuna#3450), so there ``successive_halving`` is ours, over Pareto ranks: at each rung epoch a trial goes on if no
trial that reached the same epoch dominates it (its accuracy at that epoch and its objectives known before training:
parameters, FLOPs, latency), or if it is in the top ``1/reduction_factor`` of them by Pareto rank and then accuracy.
A trial whose cheap objectives already place it off the front must beat the others' accuracy at the same epoch.

``curve`` (one objective) is learning-curve extrapolation (Domhan et al. 2015, ``nas.estimation.curves``): after each
epoch from ``max(min_epochs, curves.MIN_POINTS)`` on, the trial's curve so far is extrapolated to ``max_epochs``, and the
trial stops when the probability that it ends above the incumbent (the best accuracy at ``max_epochs`` of the trials
it sees) is below ``curve_threshold``. With no incumbent yet, or a curve already above it (the reference code's rule),
it goes on. The extrapolation falls short under a decaying learning rate, most from the first epochs: on 40 mnist5k
trials of 12 epochs (``benchmarks/curve_extrapolation.py``, ``lag: 4``) it trains 2.0x fewer epochs from epoch 3 on but
prunes the best architecture in 82 % of search orders (-0.13 pp), and 1.6x fewer from ``min_epochs: 4`` on, keeping
it always (an earlier recording of such curves needed ``min_epochs: 6``, 1.2x).

**What a pruner sees.** The trial that runs in slot ``s`` is judged against the trials of slots ``0 .. s - lag`` only:
the ones its proposal was made from, all told before it started. Its pruning is then a function of the trial log, as
its proposal is: 1 to ``lag`` workers prune the same trials, and a search resumed after a kill prunes as the one that
never stopped. Optuna's pruners would see every trial told so far, so the order in which parallel trials finish would
decide. Hyperband's bracket is drawn from the slot, not the trial number, for the same reason. The cost: a trial is
compared with ``lag - 1`` fewer trials than it could be.
"""

from __future__ import annotations

import binascii
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.estimation import curves
from nas.search import pareto
from nas.strategies.optuna_sampler import SLOT_ATTR, by_slot, visible

# The user attribute holding a trial's objectives known before training: {objective name: value}.
COSTS_ATTR = "costs"


class Pruned(Exception):
    """The trial stopped early: ``epoch`` epochs trained, ``reason`` says why."""

    def __init__(self, epoch: int, reason: str) -> None:
        super().__init__(f"pruned at epoch {epoch}: {reason}")
        self.epoch, self.reason = epoch, reason


class _SlotHyperband(optuna.pruners.HyperbandPruner):
    """Optuna's Hyperband with the bracket drawn from the trial's slot (module doc), by Optuna's own hash."""

    def _get_bracket_id(self, study: optuna.Study, trial: FrozenTrial) -> int:
        if len(self._pruners) == 0:
            return 0
        slot = trial.user_attrs.get(SLOT_ATTR, trial.number)
        n = binascii.crc32(f"{study.study_name}_{slot}".encode()) % self._total_trial_allocation_budget
        for bracket_id, budget in enumerate(self._trial_allocation_budgets):
            n -= budget
            if n < 0:
                return bracket_id
        raise AssertionError("unreachable: the budgets sum to the total")


@dataclass(frozen=True)
class Pruning:
    """How a search stops its trials early; a plain value shipped with each trial to wherever it runs.

    Args:
        objectives: the search's objectives in order, ``(name, direction)``; ``val_accuracy`` is the one with a curve.
    """

    kind: str  # median | successive_halving | hyperband | curve
    min_epochs: int
    max_epochs: int
    reduction_factor: int
    objectives: tuple[tuple[str, str], ...]
    lag: int = 1
    curve_threshold: float = 0.05  # curve: the least probability of beating the best trial that lets a trial go on

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def rungs(self) -> list[int]:
        """The epochs at which successive halving compares trials."""
        out, epoch = [], self.min_epochs
        while epoch < self.max_epochs:
            out.append(epoch)
            epoch *= self.reduction_factor
        return out

    @functools.cached_property
    def _optuna(self) -> optuna.pruners.BasePruner:
        if self.kind == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=self.min_epochs)
        if self.kind == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=self.min_epochs,
                                                          reduction_factor=self.reduction_factor)
        hyperband = _SlotHyperband(min_resource=self.min_epochs, max_resource=self.max_epochs,
                                   reduction_factor=self.reduction_factor)
        # Its brackets now, not lazily on the first prune without a lock, which trial threads would race to do
        # (with max_resource given, the study is not read).
        hyperband._try_initialization(None)
        return hyperband

    def check(self, study: optuna.Study, trial_id: int) -> str | None:
        """After an epoch's accuracy is written: why trial ``trial_id`` should stop, or None to go on."""
        trial = study._storage.get_trial(trial_id)
        step = trial.last_step
        if step is None or step >= self.max_epochs:
            return None
        slot = int(trial.user_attrs.get(SLOT_ATTR, trial.number))
        seen = [t for s, t in by_slot(study).items() if s <= slot - self.lag and t.state != TrialState.FAIL]
        if self.multi_objective:
            return self._pareto_halving(seen, trial, step)
        if self.kind == "curve":
            return self._curve(seen, trial, step)
        view = visible(study, [*seen, trial])
        if not self._optuna.prune(view, trial):
            return None
        return self._reason(view, study._storage.get_trial(trial_id), step)

    def _reason(self, view: optuna.Study, trial: FrozenTrial, step: int) -> str:
        value = trial.intermediate_values[step]
        if self.kind == "median":
            others = [t.intermediate_values[step] for t in view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                      if step in t.intermediate_values]
            best = max(v for s, v in trial.intermediate_values.items() if s <= step)
            return (f"val_accuracy {best:.4f} (best by epoch {step}) is below the median {np.median(others):.4f} of "
                    f"the {len(others)} completed trials at epoch {step} (median pruner)")
        rung = sum(1 for key in trial.system_attrs if key.startswith("completed_rung_")) - 1
        key = f"completed_rung_{rung}"
        trials = view.get_trials(deepcopy=False)
        where = ""
        if isinstance(self._optuna, _SlotHyperband):
            bracket = self._optuna._get_bracket_id(view, trial)
            trials = [t for t in trials if self._optuna._get_bracket_id(view, t) == bracket]
            where = f", bracket {bracket}"
        n = sum(1 for t in trials if key in t.system_attrs)
        # Optuna promotes at least one trial per rung: with fewer than reduction_factor there, only the best goes on.
        top = f"the top 1/{self.reduction_factor}" if n >= self.reduction_factor else "the best"
        return (f"val_accuracy {value:.4f} at epoch {step} is not {top} of the {n} trials that reached epoch {step} "
                f"({self.kind}{where})")

    def _curve(self, seen: list[FrozenTrial], trial: FrozenTrial, step: int) -> str | None:
        finals = [t.intermediate_values[self.max_epochs] for t in seen
                  if t.state == TrialState.COMPLETE and self.max_epochs in t.intermediate_values]
        curve = [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)]
        return curve_stop(curve, finals, self.max_epochs, self.min_epochs, self.curve_threshold)

    def _pareto_halving(self, seen: list[FrozenTrial], trial: FrozenTrial, step: int) -> str | None:
        if step not in self.rungs():
            return None
        rivals = [t for t in seen if step in t.intermediate_values and COSTS_ATTR in t.user_attrs]
        rows = [self._point(t, step) for t in [*rivals, trial]]
        cost = pareto.costs(rows, [d for _, d in self.objectives])
        rank = pareto.ranks(cost)
        accuracy = cost[:, [n for n, _ in self.objectives].index("val_accuracy")]
        order = sorted(range(len(rows)), key=lambda i: (rank[i], accuracy[i], i))
        me, keep = len(rows) - 1, max(1, len(rows) // self.reduction_factor)
        if rank[me] == 0 or order.index(me) < keep:
            return None
        dominated_by = int(np.sum(np.all(cost <= cost[me], axis=1) & np.any(cost < cost[me], axis=1)))
        return (f"at epoch {step}, {dominated_by} of the {len(rows)} trials that reached it dominate it (Pareto rank "
                f"{rank[me]}) and it is not in their top 1/{self.reduction_factor} (successive halving over Pareto "
                "ranks)")

    def _point(self, trial: FrozenTrial, step: int) -> list[float]:
        costs = trial.user_attrs[COSTS_ATTR]
        return [trial.intermediate_values[step] if name == "val_accuracy" else costs[name]
                for name, _ in self.objectives]


def curve_stop(curve: Sequence[float], finals: Sequence[float], max_epochs: int, min_epochs: int, threshold: float,
               predict: Callable[[Sequence[float], int], curves.Extrapolation] = curves.fit) -> str | None:
    """The curve pruner's rule on plain values: why a trial whose accuracies after epochs 1, 2, ... are ``curve``
    should stop, given the accuracies at ``max_epochs`` of the completed trials it sees (``finals``); None to go on.

    ``predict``: the extrapolation (a cached one replays a search, ``benchmarks/curve_extrapolation.py``)."""
    if len(curve) < max(min_epochs, curves.MIN_POINTS) or not finals or max(curve) > max(finals):
        return None
    incumbent = max(finals)
    prediction = predict(curve, max_epochs)
    p = prediction.prob_above(incumbent)
    if p >= threshold:
        return None
    return (f"P(val_accuracy at epoch {max_epochs} > {incumbent:.4f}, the best of the {len(finals)} completed trials) "
            f"= {p:.3f} < {threshold:g}: its curve to epoch {len(curve)} extrapolates to {prediction.mean:.4f} ± "
            f"{prediction.std:.4f} (curve pruner)")


__all__ = ["COSTS_ATTR", "Pruned", "Pruning", "curve_stop"]
