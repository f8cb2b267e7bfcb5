"""The search loop over an Optuna study, which is the single trial log.

Every strategy reaches the loop as an Optuna sampler (``nas.strategies.make_sampler``). The loop is the only one that
asks the study for trials: it gives each its slot (its place in the sequence of proposals), lets the sampler propose
the architecture for that slot, and hands the trial to an executor (``nas.execution``: threads here, or Dask workers
anywhere) that trains it and tells the study. Up to ``workers`` trials run at once; the proposal for slot ``s`` waits
until slots ``0 .. s - lag`` are told, so with ``workers <= lag`` the trials do not depend on how many run at once or in
which order they finish: the same seed gives the same trials with 1, 2 or ``lag`` workers.

A trial the search's pruner stops early is PRUNED (``nas.search.pruners``) and counts as a trial: it used up its
proposal. With several objectives the study is multi-objective, in the order and directions of ``search.objectives``.

Stopping at any point loses nothing: told trials stay in the study; a trial whose worker died stops beating (Optuna's
heartbeat) and is failed as lost by the next start, which proposes its slot again (the same architecture) and runs
only the trials still missing.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState
from tqdm.auto import tqdm

from nas.errors import UserError
from nas.execution import executor
from nas.execution.trial import (
    CREATED_ATTR,
    GRACE_S,
    HEARTBEAT_S,
    Objective,
    Outcome,
    TrialTask,
    open_storage,
    rdb,
    run_trial,
)
from nas.stores import reason, redact, require_driver, sqlite_path
from nas.strategies.optuna_sampler import BUDGET_ATTR, CONSTRAINTS_ATTR, PARENT_ATTR, SLOT_ATTR, by_slot
from nas.workers import this_worker

# The study attribute holding the lease of the search process that runs it: {"worker": host:pid, "at": unix time}.
DRIVER_ATTR = "nas:search"
# A search whose trials all diverge would never finish: after this many failed trials in a row it stops.
MAX_FAILED_IN_A_ROW = 5


@dataclass(frozen=True)
class TrialRecord:
    number: int
    arch: str
    val_accuracy: float
    seconds: float
    values: dict[str, float] | None = None  # every objective, by name
    feasible: bool = True  # within search.constraints
    budget: float | None = None  # epochs a multi-fidelity strategy chose (None: the search's own)


def open_study(storage: str, name: str, sampler: optuna.samplers.BaseSampler, identity: dict[str, Any],
               objectives: dict[str, str] | None = None) -> optuna.Study:
    """Create or load study ``name``; a loaded study must have been made with the same ``identity`` (search settings).

    Args:
        objectives: the objectives in order with their directions (default: val_accuracy, maximised).
    """
    objectives = objectives or {"val_accuracy": "maximize"}
    shown = redact(storage)
    require_driver(storage, "search.storage")
    try:
        study = optuna.create_study(storage=open_storage(storage), study_name=name, sampler=sampler,
                                    directions=list(objectives.values()), load_if_exists=True)
    except (ImportError, ValueError, OSError, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error) as exc:
        raise UserError(f"search.storage: cannot open {shown!r} ({reason(exc, storage)})") from None
    recorded = study.user_attrs.get("identity")
    if recorded is None:
        study.set_user_attr("identity", identity)
        # Which study of this name it is: a new one, after the old was deleted, may get the old one's id (SQLite).
        study.set_user_attr(CREATED_ATTR, f"{time.time_ns()}-{os.getpid()}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(objectives))  # the dashboard's and plots' names for the values
    elif recorded != identity:
        changed = sorted(k for k in {*recorded, *identity} if recorded.get(k) != identity.get(k))
        raise UserError(
            f"search.study_name: study {name!r} in {shown} was made with other settings ({', '.join(changed)}); "
            "choose another study_name or leave it unset"
        )
    return study


def recorded_attrs(storage: str, name: str) -> dict[str, Any]:
    """The user attributes of study ``name`` in ``storage``, read without creating or changing anything: {} when
    there is no such store or study, or it cannot be read (``open_study`` then says why)."""
    path = sqlite_path(storage)
    if path is not None and not os.path.isfile(path):
        return {}
    try:
        rdb_storage = optuna.storages.RDBStorage(storage, skip_table_creation=True, skip_compatibility_check=True)
        try:
            return rdb_storage.get_study_user_attrs(rdb_storage.get_study_id_from_name(name))
        finally:
            rdb_storage.engine.dispose()
    except (KeyError, ImportError, ValueError, OSError, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error):
        return {}


def fail_lost(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose heartbeat stopped more than ``GRACE_S`` seconds ago (Optuna's
    ``fail_stale_trials``: their worker died, on any host); returns their numbers."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return sorted(running - {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))})


def _beating(study: optuna.Study) -> set[int]:
    """Numbers of the study's trials that have ever recorded a heartbeat."""
    storage = rdb(study._storage)
    if storage is None:
        return set()
    query = sqlalchemy.text("SELECT t.number FROM trials t JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
                            "WHERE t.study_id = :study")
    with storage.engine.connect() as connection:
        return {row[0] for row in connection.execute(query, {"study": study._study_id})}


def settle(study: optuna.Study, report: Callable[[str], None] = print) -> list[int]:
    """Before a search (re)starts: wait until every trial left RUNNING is told by its worker or found lost; returns
    the lost ones. A trial that starts meanwhile means another search runs this study: refused."""
    first = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    lost: list[int] = []
    waited, started = False, time.monotonic()
    while True:
        lost += fail_lost(study)
        running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        if running - first:
            raise UserError(f"search.study_name: study {study.study_name!r} is being searched by another process "
                            f"(trials {sorted(running - first)} started just now); run one search per study and give "
                            "it more workers (search.workers) instead")
        if not running:
            break
        if time.monotonic() - started > GRACE_S + 2 * HEARTBEAT_S:
            # A trial whose process died between its creation and its first heartbeat never turns stale.
            for number in sorted(running - _beating(study)):
                study.tell(number, state=TrialState.FAIL)
                lost.append(number)
            continue
        if not waited:
            report(f"[search] waiting for trial(s) {sorted(running)} of an earlier start: a running worker tells them, "
                   f"a dead one stops beating and they count as lost after {GRACE_S}s")
            waited = True
        time.sleep(1)
    if lost:
        report(f"[search] trial(s) {lost} lost with their worker (no heartbeat for {GRACE_S}s); not counted, their "
               "slots are proposed again")
    return lost


def objective_names(study: optuna.Study) -> list[str]:
    return study.metric_names or ["val_accuracy"]


def records(study: optuna.Study) -> list[TrialRecord]:
    """The completed trials, in trial-number order (infeasible ones marked: they were not trained)."""
    names = objective_names(study)
    return [
        TrialRecord(t.number, t.user_attrs["arch"], float(t.values[names.index("val_accuracy")]),
                    float(t.user_attrs.get("seconds", 0.0)), dict(zip(names, map(float, t.values))),
                    t.user_attrs.get(CONSTRAINTS_ATTR, 0.0) <= 0, t.user_attrs.get(BUDGET_ATTR))
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ]


def counted(study: optuna.Study) -> int:
    """Trials that count towards ``n_trials``: completed and pruned ones."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def claim(study: optuna.Study, report: Callable[[str], None] = print) -> None:
    """Take the study's lease. One renewed by another search process in the last ``GRACE_S`` seconds may be that of
    a process that just died: it is watched until it expires (taken) or is renewed (refused: two searches on one
    study would each count and propose for themselves)."""
    lease = _lease(study)
    if lease and lease["worker"] != this_worker() and time.time() - lease["at"] < GRACE_S:
        report(f"[search] waiting up to {GRACE_S}s to see whether {lease['worker']} still runs this study")
        seen = lease["at"]
        while time.time() - seen < GRACE_S:
            time.sleep(0.5)
            lease = _lease(study)
            if lease["at"] == 0.0:
                break  # released: that search ended
            if lease["at"] != seen:
                raise UserError(f"search.study_name: study {study.study_name!r} is being searched by "
                                f"{lease['worker']}; run one search per study and give it more workers "
                                "(search.workers) instead")
    _renew(study)


def _lease(study: optuna.Study) -> dict[str, Any] | None:
    return study._storage.get_study_system_attrs(study._study_id).get(DRIVER_ATTR)


def _renew(study: optuna.Study, at: float | None = None) -> None:
    lease = {"worker": this_worker(), "at": time.time() if at is None else at}
    study._storage.set_study_system_attr(study._study_id, DRIVER_ATTR, lease)


def _progress(total: int, done: int) -> Any:
    """The trials bar: on a terminal only (CI logs keep the one line per trial)."""
    return tqdm(total=total, initial=done, desc="trials", unit="trial", leave=False,
                disable=True if os.environ.get("CI") else None)


def run_search(
    study: optuna.Study,
    space: Any,
    objective: Objective,
    n_trials: int,
    report: Callable[[str], None] = print,
    *,
    workers: int = 1,
    lag: int = 1,
    submit: Callable[..., Any] | None = None,
    storage_url: str | None = None,
    task: dict[str, Any] | None = None,
    timeout_s: float | None = None,
) -> list[TrialRecord]:
    """Run trials until the study holds ``n_trials`` completed or pruned ones; returns all completed trials.

    ``objective(trial_number, arch, on_epoch_end)`` scores one architecture and calls ``on_epoch_end(epoch,
    metrics)`` after each epoch; the validation accuracy of each epoch becomes the trial's intermediate value. A trial
    whose training diverged (``Diverged``) is marked failed with its reason and the search goes on, until
    ``MAX_FAILED_IN_A_ROW`` fail in a row; any other exception marks the trial failed and is raised again.

    Args:
        workers: trials run at once (at most ``lag``).
        lag: the proposal for slot ``s`` waits for slots ``0 .. s - lag`` (the sampler must be made with the same lag).
        submit: where trials run (``submit`` of a ``nas.execution.executor``); default: ``workers`` threads of this
            process.
        storage_url: the study's URL, for workers in other processes (they open their own connection).
        task: more fields of each ``TrialTask`` (objectives, constraints, measure, pruning).
        timeout_s: start no trial after this many seconds (the running ones finish).
    """
    if workers > lag:
        raise ValueError(f"workers ({workers}) must be at most lag ({lag})")
    # Optuna warns that heartbeats are meant for study.optimize; this loop records them itself (and its workers do).
    warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
    if submit is None:
        with executor("local", workers) as local:
            return run_search(study, space, objective, n_trials, report, workers=workers, lag=lag, submit=local.submit,
                              task=task, timeout_s=timeout_s)
    claim(study, report)
    try:
        return _run(study, space, objective, n_trials, report, workers, lag, submit, storage_url, task or {},
                    timeout_s)
    finally:
        _renew(study, at=0.0)  # released: a next start need not wait for it


def _run(study: optuna.Study, space: Any, objective: Objective, n_trials: int, report: Callable[[str], None],
         workers: int, lag: int, submit: Callable[..., Any], storage_url: str | None, task: dict[str, Any],
         timeout_s: float | None) -> list[TrialRecord]:
    settle(study, report)
    told = set(by_slot(study))
    count = counted(study)
    if count:
        report(f"[search] resuming study {study.study_name!r}: {count}/{n_trials} trials already done")
    # The best as the search reports it (pareto.best_of): the most accurate at the largest budget trained
    best = max(((r.budget or 0, r.val_accuracy) for r in records(study) if r.feasible), default=None)
    started = time.monotonic()
    failed: dict[int, bool] = {}  # slot -> whether its trial failed, for the slots told by this run
    running: dict[int, tuple[Any, int, str, float]] = {}  # trial number -> (trial, slot, arch string, budget or 0)
    finished: queue.Queue = queue.Queue()
    storage = rdb(study._storage)
    # A trial handed to another process may wait in its queue: this loop beats for it until its worker does. Threads
    # here start each trial at once and beat for it themselves.
    queued = storage is not None and storage_url is not None
    beaten = time.monotonic()
    inherits = getattr(objective, "inherits", False)  # an objective that starts a child from its parent's weights
    with _progress(n_trials, count) as bar:
        while count < n_trials:
            if timeout_s is not None and time.monotonic() - started > timeout_s and not running:
                report(f"[search] timeout_s {timeout_s:g} reached: {count}/{n_trials} trials done")
                break
            if time.monotonic() - beaten >= 2 * HEARTBEAT_S:  # this search is alive while this loop is
                beaten = time.monotonic()
                _renew(study)
                for trial, *_ in running.values() if queued else ():
                    storage.record_heartbeat(trial._trial_id)
            late = timeout_s is not None and time.monotonic() - started > timeout_s
            while not late and len(running) < workers and count + len(running) < n_trials:
                slot = min(set(range(len(told) + len(running) + 1)) - told - {s for _, s, *_ in running.values()})
                if any(j not in told for j in range(slot - lag + 1)):
                    break  # its proposal needs a trial still running
                trial = study.ask()
                if queued:
                    storage.record_heartbeat(trial._trial_id)  # at once: it may wait for a free worker
                trial.set_user_attr(SLOT_ATTR, slot)
                arch = space.suggest(trial)
                trial.set_user_attr("arch", space.encode(arch))
                # A multi-fidelity strategy's proposal, which the sampler wrote to the storage (the trial's own
                # user_attrs are a copy from before the sampling).
                attrs = study._storage.get_trial_user_attrs(trial._trial_id)
                budget = attrs.get(BUDGET_ATTR)
                future = submit(run_trial, TrialTask(storage_url or study._storage, trial._trial_id, trial.number,
                                                     arch, objective, None if budget is None else max(1, round(budget)),
                                                     study_name=study.study_name,
                                                     parent=attrs.get(PARENT_ATTR) if inherits else None,
                                                     **task))
                shown = space.encode(arch) + ("" if budget is None else f"  ({max(1, round(budget))} epochs)")
                running[trial.number] = (trial, slot, shown, budget or 0)
                future.add_done_callback(lambda f, n=trial.number: finished.put((n, f)))
            try:
                number, future = finished.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                continue
            trial, slot, arch, budget = running.pop(number)
            try:
                outcome: Outcome = future.result()
            except BaseException:
                if study.get_trials(deepcopy=False)[number].state == TrialState.RUNNING:
                    study.tell(number, state=TrialState.FAIL)
                raise
            told.add(slot)
            failed[slot] = outcome.state == "failed"
            if outcome.state == "failed":
                report(f"[search] trial #{number} FAILED: {outcome.fail_reason}; not counted  {arch}")
                # Counted in slot order over the slots told without a gap, so how many workers run cannot change it.
                contiguous = min(set(range(len(told) + 1)) - told)
                failed_in_a_row = next((k for k in range(contiguous) if not failed.get(contiguous - 1 - k, False)),
                                       contiguous)
                if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                    raise UserError(f"search: {failed_in_a_row} trials in a row failed (last: {outcome.fail_reason}); "
                                    "lower search.lr or check the prepared data")
                continue
            count += 1
            bar.update()
            if outcome.state == "pruned":
                report(f"[search] trial {count}/{n_trials} (#{number})  PRUNED at epoch {outcome.pruned_at}: "
                       f"{outcome.reason}  {arch}")
                continue
            if outcome.state == "infeasible":
                report(f"[search] trial {count}/{n_trials} (#{number})  not trained: {outcome.reason}  {arch}")
                continue
            best = max(best or (budget, outcome.val_accuracy), (budget, outcome.val_accuracy))
            others = "".join(f"  {name}={value:.4g}" for (name, _), value in
                             zip(task.get("objectives", ()), outcome.values) if name != "val_accuracy")
            report(
                f"[search] trial {count}/{n_trials} (#{number})  val_acc={outcome.val_accuracy:.4f}{others}  "
                f"best={best[1]:.4f}  {outcome.seconds:.1f}s  {arch}"
            )
    return records(study)
