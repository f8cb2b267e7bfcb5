"""The search loop over an Optuna study, which is the single trial log.

Every strategy reaches the loop as an Optuna sampler (``nas.strategies.make_sampler``); the loop asks the study for a
trial, lets the space read the architecture from it define-by-run, scores it and tells the study. Stopping at any
point loses nothing: completed trials stay in the study, and ``run_search`` on the same study marks the trial a dead
process left RUNNING as failed (it is not counted) and runs only the trials still missing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import TrialState
from sqlalchemy import event

from nas.errors import UserError
from nas.estimation import Result
from nas.stores import first_use, reason, redact, require_driver, retry_race, sqlite_path, sqlite_wal
from nas.strategies.optuna_sampler import FAIL_REASON_ATTR
from nas.training.loop import Diverged, EpochCallback
from nas.workers import alive, this_worker

WORKER_ATTR = "worker"
# A search whose trials all diverge would never finish: after this many failed trials in a row it stops.
MAX_FAILED_IN_A_ROW = 5


@dataclass(frozen=True)
class TrialRecord:
    number: int
    arch: str
    val_accuracy: float
    seconds: float


def _storage(url: str) -> optuna.storages.BaseStorage:
    path = sqlite_path(url)
    if path is not None:
        sqlite_wal(path)  # also creates the folder
    with first_use(url):  # the first process to open a new store creates its tables; the others wait for it
        storage = retry_race(lambda: optuna.storages.RDBStorage(url), (sqlalchemy.exc.IntegrityError,))
    if path is not None:
        # In WAL mode, synchronous=NORMAL is still safe from corruption; a power cut may lose the last commits
        # (at worst the trial in flight, which a restart runs again). It halves the cost of each trial's writes.
        event.listen(storage.engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=NORMAL"))
        storage.engine.dispose()
    return storage


def open_study(storage: str, name: str, sampler: optuna.samplers.BaseSampler, identity: dict[str, Any]) -> optuna.Study:
    """Create or load study ``name``; a loaded study must have been made with the same ``identity`` (search settings)."""
    shown = redact(storage)
    require_driver(storage, "search.storage")
    try:
        study = optuna.create_study(
            storage=_storage(storage), study_name=name, sampler=sampler, direction="maximize", load_if_exists=True
        )
    except (ImportError, ValueError, OSError, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error) as exc:
        raise UserError(f"search.storage: cannot open {shown!r} ({reason(exc, storage)})") from None
    recorded = study.user_attrs.get("identity")
    if recorded is None:
        study.set_user_attr("identity", identity)
    elif recorded != identity:
        changed = sorted(k for k in {*recorded, *identity} if recorded.get(k) != identity.get(k))
        raise UserError(
            f"search.study_name: study {name!r} in {shown} was made with other settings ({', '.join(changed)}); "
            "choose another study_name or leave it unset"
        )
    return study


def fail_orphans(study: optuna.Study, report: Callable[[str], None] = print) -> list[int]:
    """Mark failed the RUNNING trials whose process on this host is gone; returns their numbers."""
    orphans = [
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not alive(t.user_attrs.get(WORKER_ATTR))
    ]
    for number in orphans:
        study.tell(number, state=TrialState.FAIL)
    if orphans:
        report(f"[search] trial(s) {orphans} of a stopped process marked failed; they are not counted")
    return orphans


def records(study: optuna.Study) -> list[TrialRecord]:
    """The completed trials, in trial-number order."""
    return [
        TrialRecord(t.number, t.user_attrs["arch"], float(t.value), float(t.user_attrs.get("seconds", 0.0)))
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ]


Objective = Callable[[int, Hashable, EpochCallback], Result]


def run_search(
    study: optuna.Study,
    space: Any,
    objective: Objective,
    n_trials: int,
    report: Callable[[str], None] = print,
) -> list[TrialRecord]:
    """Run trials until the study holds ``n_trials`` completed ones; returns all completed trials.

    ``objective(trial_number, arch, on_epoch_end)`` scores one architecture and calls ``on_epoch_end(epoch,
    metrics)`` after each epoch; the validation accuracy of each epoch becomes the trial's intermediate value. A trial
    whose training diverged (``Diverged``) is marked failed with its reason and the search goes on, until
    ``MAX_FAILED_IN_A_ROW`` fail in a row; any other exception marks the trial failed and is raised again.
    """
    fail_orphans(study, report)
    done = records(study)
    if done:
        report(f"[search] resuming study {study.study_name!r}: {len(done)}/{n_trials} trials already complete")
    best = max((r.val_accuracy for r in done), default=float("nan"))
    failed_in_a_row = 0
    # The learning curve is written while the next epochs train; only the trial's last writes wait for the store.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="optuna-writer") as writer:
        while len(done) < n_trials:
            trial = study.ask()
            trial.set_user_attr(WORKER_ATTR, this_worker())  # at once: it tells a restart whether this trial is orphaned
            arch = space.suggest(trial)
            writes = [writer.submit(trial.set_user_attr, "arch", space.encode(arch))]

            def on_epoch_end(epoch: int, metrics: dict[str, float], trial=trial, writes=writes) -> None:
                writes.append(writer.submit(trial.report, metrics["val_accuracy"], epoch))

            try:
                result = objective(trial.number, arch, on_epoch_end)
                for write in writes:
                    write.result()
            except Diverged as exc:
                wait(writes)
                trial.set_user_attr(FAIL_REASON_ATTR, str(exc))
                study.tell(trial, state=TrialState.FAIL)
                failed_in_a_row += 1
                report(f"[search] trial #{trial.number} FAILED: {exc}; not counted  {space.encode(arch)}")
                if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                    raise UserError(f"search: {failed_in_a_row} trials in a row failed (last: {exc}); lower "
                                    "search.lr or check the prepared data") from None
                continue
            except BaseException:
                wait(writes)
                study.tell(trial, state=TrialState.FAIL)
                raise
            failed_in_a_row = 0
            trial.set_user_attr("seconds", result.seconds)
            trial.set_user_attr("n_params", result.n_params)
            study.tell(trial, result.val_accuracy)
            done.append(TrialRecord(trial.number, space.encode(arch), result.val_accuracy, result.seconds))
            best = result.val_accuracy if not best >= result.val_accuracy else best
            report(
                f"[search] trial {len(done)}/{n_trials} (#{trial.number})  val_acc={result.val_accuracy:.4f}  "
                f"best={best:.4f}  {result.seconds:.1f}s  {space.encode(arch)}"
            )
    return done
