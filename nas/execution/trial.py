"""One trial, run where the executor put it: measure what is known before training, train, report the learning curve
to the study (and stop early when the search's pruner says so), tell the study.

The worker writes the trial's outcome to the study itself, so a result is kept even when the process that handed the
trial out dies meanwhile. While it runs, the worker records Optuna's heartbeat for the trial; a trial whose heartbeat
stops (its worker or host died) is found stale by ``optuna.storages.fail_stale_trials`` from any host.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.samplers._base import _CONSTRAINTS_KEY
from optuna.trial import TrialState
from sqlalchemy import event

from nas.errors import UserError
from nas.estimation import Result
from nas.search.pruners import COSTS_ATTR, Pruned, Pruning
from nas.stores import first_use, retry_race, sqlite_path, sqlite_wal
from nas.strategies.optuna_sampler import CONSTRAINTS_ATTR, FAIL_REASON_ATTR, VALUES_ATTR
from nas.training.loop import Diverged, EpochCallback

# Heartbeat of a running trial, and how long without one before it counts as lost (Optuna wants whole seconds).
HEARTBEAT_S = 2
GRACE_S = 10

Objective = Callable[[int, Hashable, EpochCallback], Result]


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on ``url``, with heartbeats; SQLite in WAL mode. Several processes may open a new store at
    once: the first creates its tables, the others wait for it."""
    path = sqlite_path(url)
    if path is not None:
        sqlite_wal(path)  # also creates the folder
    with first_use(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: "experimental" since 2.9
        storage = retry_race(lambda: optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S,
                                                                grace_period=GRACE_S),
                             (sqlalchemy.exc.IntegrityError,))
    if path is not None:
        # In WAL mode, synchronous=NORMAL is still safe from corruption; a power cut may lose the last commits
        # (at worst the trial in flight, which a restart runs again). It halves the cost of each trial's writes.
        event.listen(storage.engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=NORMAL"))
        storage.engine.dispose()
    return storage


def rdb(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDB storage behind ``storage`` (a study wraps it in a cache), or None for another kind."""
    storage = getattr(storage, "_backend", storage)
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


# A study's user attribute set when the search creates it: which study of its name it is.
CREATED_ATTR = "created"


@functools.lru_cache(maxsize=8)
def _worker_storage(url: str) -> optuna.storages.RDBStorage:
    return open_storage(url)  # one engine per worker process and store


def _worker_study(url: str, name: str) -> optuna.Study:
    """Study ``name`` as a worker process's pruner reads it: loaded once per process (a study caches the trials that
    have finished, and a new one reads every trial again: 0.7 s a trial at 1,300 trials); a new study of the name
    (created anew, with the same id or not) is loaded anew."""
    storage = _worker_storage(url)
    study_id = storage.get_study_id_from_name(name)
    return _loaded_study(url, study_id, storage.get_study_user_attrs(study_id).get(CREATED_ATTR), name)


@functools.lru_cache(maxsize=8)
def _loaded_study(url: str, study_id: int, created: str | None, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=_worker_storage(url), sampler=optuna.samplers.RandomSampler(0))


@contextmanager
def every(seconds: float, action: Callable[[], None], name: str) -> Iterator[None]:
    """Run ``action`` every ``seconds`` on a thread while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def heartbeat(storage: optuna.storages.BaseStorage, trial_id: int) -> Iterator[None]:
    """Record the trial's heartbeat every ``HEARTBEAT_S`` seconds while the block runs."""
    storage = rdb(storage)
    if storage is None:
        yield
        return
    storage.record_heartbeat(trial_id)
    with every(HEARTBEAT_S, lambda: storage.record_heartbeat(trial_id), f"heartbeat-{trial_id}"):
        yield


@dataclass(frozen=True)
class TrialTask:
    """What a worker needs to run trial ``number``: ``storage`` is the study's URL (a worker process opens its own
    connection) or, for threads of the process that owns it, the storage itself.

    Args:
        budget: epochs to train (a multi-fidelity strategy's proposal); None: the search's own.
        objectives: ``(name, direction)`` of each objective, in the study's order; ``val_accuracy`` comes from
            training, the others from ``measure(arch) -> {name: value}`` before training.
        constraints: bounds on objectives (a maximum for one minimised, a minimum for one maximised). An architecture
            that breaks a bound on an objective known before training is not trained (module ``nas.search.stage``).
        pruning: when set, the trial stops as soon as it says so after an epoch; ``study_name`` locates the study.
        parent: the trial whose architecture this one's was derived from (an objective that inherits weights reads
            its checkpoint); None: a fresh sample, or a strategy that does not say.
    """

    storage: str | optuna.storages.BaseStorage
    trial_id: int
    number: int
    arch: Hashable
    objective: Objective
    budget: int | None = None
    objectives: tuple[tuple[str, str], ...] = (("val_accuracy", "maximize"),)
    constraints: tuple[tuple[str, float], ...] = ()
    measure: Callable[[Hashable], dict[str, float]] | None = None
    pruning: Pruning | None = None
    study_name: str = ""
    parent: int | None = None


@dataclass(frozen=True)
class Outcome:
    number: int
    val_accuracy: float | None  # None: the training diverged (``fail_reason`` says how)
    seconds: float = 0.0
    n_params: int = 0
    fail_reason: str = ""
    state: str = "complete"  # complete | pruned | failed | infeasible (complete, not trained)
    values: tuple[float, ...] = ()
    pruned_at: int = 0
    reason: str = ""  # why it was pruned, or which bound it breaks


def violation(values: dict[str, float], constraints: tuple[tuple[str, float], ...],
              directions: dict[str, str]) -> tuple[float, list[str]]:
    """How far ``values`` are outside the bounds (0: inside), and the bounds broken, in words."""
    total, broken = 0.0, []
    for name, bound in constraints:
        if name not in values:
            continue
        over = values[name] - bound if directions[name] == "minimize" else bound - values[name]
        if over > 0:
            total += over
            sign = "<=" if directions[name] == "minimize" else ">="
            broken.append(f"{name} {values[name]:.4g} breaks {name} {sign} {bound:g}")
    return total, broken


def _record_violation(storage: Any, trial_id: int, over: float) -> None:
    """Where strategies read a trial's constraint violation: our attribute, and Optuna's own key, which its samplers'
    ``after_trial`` would write from ``constraints_func`` if the trial were told through ``study.tell`` (workers write
    the storage directly, so no sampler's ``after_trial`` runs)."""
    storage.set_trial_user_attr(trial_id, CONSTRAINTS_ATTR, over)
    storage.set_trial_system_attr(trial_id, _CONSTRAINTS_KEY, (over,))


def _epoch_writer(task: TrialTask, storage: Any, writer: ThreadPoolExecutor, writes: list[Any]) -> EpochCallback:
    """The callback that makes each epoch's validation accuracy an intermediate value (step = epochs trained); with
    a pruner, written at once and judged, else written while the next epoch trains."""
    study = None
    if task.pruning is not None and isinstance(task.storage, str):
        study = _worker_study(task.storage, task.study_name)
    elif task.pruning is not None:  # the search's own storage, whose cache of finished trials it shares
        study = optuna.load_study(study_name=task.study_name, storage=storage,
                                  sampler=optuna.samplers.RandomSampler(0))

    def on_epoch_end(epoch: int, metrics: dict[str, float]) -> None:
        if study is None:
            writes.append(writer.submit(storage.set_trial_intermediate_value, task.trial_id, epoch + 1,
                                        metrics["val_accuracy"]))
            return
        storage.set_trial_intermediate_value(task.trial_id, epoch + 1, metrics["val_accuracy"])
        reason = task.pruning.check(study, task.trial_id)
        if reason is not None:
            raise Pruned(epoch + 1, reason)

    return on_epoch_end


def run_trial(task: TrialTask) -> Outcome:
    """Measure, train and tell ``task.arch``; write the outcome to the study.

    The validation accuracy after each epoch becomes an intermediate value. A trial the pruner stops is PRUNED (the
    accuracy it had then and the reason are kept as attributes). A diverged training (``Diverged``) fails the trial
    with its reason (it used up its proposal); any other exception fails it without one (its slot is proposed again)
    and is raised.
    """
    storage = _worker_storage(task.storage) if isinstance(task.storage, str) else task.storage
    trial_id = task.trial_id
    directions = dict(task.objectives)
    with heartbeat(storage, trial_id), ThreadPoolExecutor(1, thread_name_prefix="optuna-writer") as writer:
        costs = task.measure(task.arch) if task.measure is not None else {}
        if costs:
            storage.set_trial_user_attr(trial_id, COSTS_ATTR, costs)
        over, broken = violation(costs, task.constraints, directions)
        if task.constraints:
            _record_violation(storage, trial_id, over)
        if over > 0:
            # Not trained: recorded as complete with the lowest accuracy and its violation, so samplers with a
            # constraints_func learn it is infeasible; reports and the front leave it out.
            values = tuple(0.0 if name == "val_accuracy" else costs[name] for name in directions)
            storage.set_trial_user_attr(trial_id, "infeasible", "; ".join(broken))
            storage.set_trial_state_values(trial_id, TrialState.COMPLETE, list(values))
            return Outcome(task.number, 0.0, state="infeasible", values=values, reason="; ".join(broken))
        writes: list[Any] = []
        on_epoch_end = _epoch_writer(task, storage, writer, writes)
        try:
            extra = {k: v for k, v in (("budget", task.budget), ("parent", task.parent)) if v is not None}
            result = task.objective(task.number, task.arch, on_epoch_end, **extra)
            for write in writes:
                write.result()
        except Pruned as exc:
            wait(writes)
            accuracy = storage.get_trial(trial_id).intermediate_values[exc.epoch]
            values = tuple(accuracy if name == "val_accuracy" else costs[name] for name in directions)
            storage.set_trial_user_attr(trial_id, VALUES_ATTR, list(values))
            storage.set_trial_user_attr(trial_id, "pruned_at_epoch", exc.epoch)
            storage.set_trial_user_attr(trial_id, "prune_reason", exc.reason)
            storage.set_trial_state_values(trial_id, TrialState.PRUNED)
            return Outcome(task.number, None, state="pruned", values=values, pruned_at=exc.epoch, reason=exc.reason)
        except Diverged as exc:
            wait(writes)
            storage.set_trial_user_attr(trial_id, FAIL_REASON_ATTR, str(exc))
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            return Outcome(task.number, None, fail_reason=str(exc), state="failed")
        except BaseException as exc:
            wait(writes)
            if isinstance(exc, UserError):  # what stopped the search, on the trial it stopped in (not a fail_reason:
                storage.set_trial_user_attr(trial_id, "stopped_search", str(exc))  # its slot is proposed again)
            storage.set_trial_state_values(trial_id, TrialState.FAIL)
            raise
        values = tuple(result.val_accuracy if name == "val_accuracy" else costs[name] for name in directions)
        if task.constraints:  # a bound on accuracy is known only now
            over, broken = violation(dict(zip(directions, values)), task.constraints, directions)
            _record_violation(storage, trial_id, over)
            if broken:
                storage.set_trial_user_attr(trial_id, "infeasible", "; ".join(broken))
        storage.set_trial_user_attr(trial_id, "seconds", result.seconds)
        storage.set_trial_user_attr(trial_id, "n_params", result.n_params)
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, list(values))
    return Outcome(task.number, result.val_accuracy, result.seconds, result.n_params, values=values)
