"""The search loop over an Optuna study, which is the single trial log.

Every strategy reaches the loop as an Optuna sampler (``nas.strategies.make_sampler``); the loop asks the study for a
trial, lets the space read the architecture from it define-by-run, scores it and tells the study. Stopping at any
point loses nothing: completed trials stay in the study, and ``run_search`` on the same study marks the trial a dead
process left RUNNING as failed (it is not counted) and runs only the trials still missing.
"""

from __future__ import annotations

import os
import socket
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
from nas.stores import sqlite_path, sqlite_wal
from nas.training.loop import EpochCallback

WORKER_ATTR = "worker"


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
    storage = optuna.storages.RDBStorage(url)
    if path is not None:
        # In WAL mode, synchronous=NORMAL is still safe from corruption; a power cut may lose the last commits
        # (at worst the trial in flight, which a restart runs again). It halves the cost of each trial's writes.
        event.listen(storage.engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=NORMAL"))
        storage.engine.dispose()
    return storage


def open_study(storage: str, name: str, sampler: optuna.samplers.BaseSampler, identity: dict[str, Any]) -> optuna.Study:
    """Create or load study ``name``; a loaded study must have been made with the same ``identity`` (search settings)."""
    try:
        study = optuna.create_study(
            storage=_storage(storage), study_name=name, sampler=sampler, direction="maximize", load_if_exists=True
        )
    except (ImportError, ValueError, OSError, sqlalchemy.exc.SQLAlchemyError, sqlite3.Error) as exc:
        raise UserError(f"search.storage: cannot open {storage!r} ({exc})") from None
    recorded = study.user_attrs.get("identity")
    if recorded is None:
        study.set_user_attr("identity", identity)
    elif recorded != identity:
        changed = sorted(k for k in {*recorded, *identity} if recorded.get(k) != identity.get(k))
        raise UserError(
            f"search.study_name: study {name!r} in {storage} was made with other settings ({', '.join(changed)}); "
            "choose another study_name or leave it unset"
        )
    return study


def _this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(worker: str | None) -> bool:
    host, _, pid = (worker or "").rpartition(":")
    if not host:
        return False  # died before it could record who it was
    if host != socket.gethostname():
        return True  # another machine's worker: nothing here can tell, so leave it alone
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def fail_orphans(study: optuna.Study, report: Callable[[str], None] = print) -> list[int]:
    """Mark failed the RUNNING trials whose process on this host is gone; returns their numbers."""
    orphans = [
        t.number
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if not _alive(t.user_attrs.get(WORKER_ATTR))
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
    metrics)`` after each epoch; the validation accuracy of each epoch becomes the trial's intermediate value. An
    exception in the objective marks the trial failed and is raised again.
    """
    fail_orphans(study, report)
    done = records(study)
    if done:
        report(f"[search] resuming study {study.study_name!r}: {len(done)}/{n_trials} trials already complete")
    best = max((r.val_accuracy for r in done), default=float("nan"))
    # The learning curve is written while the next epochs train; only the trial's last writes wait for the store.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="optuna-writer") as writer:
        while len(done) < n_trials:
            trial = study.ask()
            trial.set_user_attr(WORKER_ATTR, _this_worker())  # at once: it tells a restart whether this trial is orphaned
            arch = space.suggest(trial)
            writes = [writer.submit(trial.set_user_attr, "arch", space.encode(arch))]

            def on_epoch_end(epoch: int, metrics: dict[str, float], trial=trial, writes=writes) -> None:
                writes.append(writer.submit(trial.report, metrics["val_accuracy"], epoch))

            try:
                result = objective(trial.number, arch, on_epoch_end)
                for write in writes:
                    write.result()
            except BaseException:
                wait(writes)
                study.tell(trial, state=TrialState.FAIL)
                raise
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
