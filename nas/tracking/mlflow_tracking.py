"""MLflow tracking of a search: one parent run per search, one nested child run per trial.

Everything goes through ``MlflowClient`` with explicit run ids rather than MLflow's thread-local active run, so
trials can be tracked from worker threads. A trial's per-epoch metrics are written in one batch at most every
``flush_seconds`` and when it ends, so short trials do not wait on the store once per epoch. A restarted search finds
its parent run again by the study's name and marks the child runs of trials that died with the old process as KILLED;
every run records the process that runs it (tag ``nas_worker``), so the next start closes, as KILLED, any run a dead
process left RUNNING. Store URLs are logged and shown without their passwords.

Not MLflow's own asynchronous logging (``log_batch(..., synchronous=False)``): its queue is one per store, and
``set_terminated`` of any run shuts it down and waits out the queue's one-second poll, so closing each trial costs about
a second. 50 trial runs x 4 epochs on SQLite, 20 ms "training" per epoch, time the training thread waits on tracking:
this writer thread 1-10 ms per trial (one batch per epoch instead of the buffer: 2-8 ms), every call synchronous 55-120
ms, MLflow's async queue (runs created and closed synchronously, or on this writer thread) 1,040-1,060 ms.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from sqlalchemy.exc import SQLAlchemyError

from nas.errors import UserError
from nas.stores import first_use, reason, redact, require_driver, retry_race, sqlite_path, sqlite_wal
from nas.workers import alive, this_worker

PARENT_RUN_ATTR = "mlflow_parent_run_id"  # the Optuna study's record of its MLflow parent run
STUDY_TAG = "optuna_study"
TRIAL_TAG = "optuna_trial_number"
ROLE_TAG = "nas_role"
STORAGE_TAG = "optuna_storage"
WORKER_TAG = "nas_worker"
FAIL_REASON_TAG = "fail_reason"
# A trial's Optuna state (COMPLETE, PRUNED); a pruned trial's run also says at which epoch and why.
TRIAL_STATE_TAG = "optuna_trial_state"
PRUNED_AT_TAG = "pruned_at_epoch"
PRUNE_REASON_TAG = "prune_reason"
# MLflow 3's UI guesses the kind of an experiment without this tag and may open it in its GenAI view (traces,
# prompts); "custom_model_development" is its "Machine learning" kind, whose default page is the runs table. MLflow
# has no Python constant for either: the names are those of its UI (mlflow/server/js, MLflow 3.17).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
# The search trackers of this process by parent run id, so trials run in its threads use the search's own.
_TRACKERS: dict[str, SearchTracker] = {}
_ATTACHING = threading.Lock()


def tracking_uri(configured: str) -> str:
    """``MLFLOW_TRACKING_URI`` wins over params.yaml, as in every MLflow tool."""
    return os.environ.get("MLFLOW_TRACKING_URI") or configured


def git_commit(cwd: str | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=cwd, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def run_tags(commit: str) -> dict[str, str]:
    """Tags of every run we create: the process that runs it and the code's git commit (MLflow's own tag, which its
    UI shows as the run's source version)."""
    return {WORKER_TAG: this_worker(), **({MLFLOW_GIT_COMMIT: commit} if commit != "unknown" else {})}


TRACKING_ERRORS = (MlflowException, SQLAlchemyError, sqlite3.Error)


@contextmanager
def refused_by_store(uri: str, doing: str) -> Iterator[None]:
    """An MLflow store that fails (locked, unreachable) while ``doing`` is one error line under ``tracking.uri``.
    The Optuna study, not MLflow, is the record of a search: the search run again trains nothing it holds, and
    brings the runs up to date (``SearchTracker.reconcile``)."""
    try:
        yield
    except TRACKING_ERRORS as exc:
        raise UserError(f"tracking.uri: the MLflow store {redact(uri)!r} failed while {doing} ({reason(exc, uri)}); "
                        "the Optuna study keeps every trial: run the search again once the store answers") from None


def open_tracking(uri: str, experiment: str, key: str = "tracking.uri",
                  experiment_key: str = "tracking.experiment") -> tuple[MlflowClient, str]:
    """A client on ``uri`` and the id of ``experiment`` (created if new); an unusable store is a UserError under
    ``key``, a deleted experiment one under ``experiment_key``.

    A new store is created (its schema migrated) by one process at a time: searches started together on an empty
    store would otherwise race on MLflow's migrations."""
    require_driver(uri, key)
    try:
        path = sqlite_path(uri)
        if path is not None:
            sqlite_wal(path)
        with first_use(uri):
            client = MlflowClient(tracking_uri=uri)
            found = client.get_experiment_by_name(experiment)
            if found is not None and found.lifecycle_stage == "deleted":  # MLflow logs to active experiments only
                raise UserError(f"{experiment_key}: experiment {experiment!r} is deleted in {redact(uri)!r}; restore "
                                f"it (mlflow experiments restore --experiment-id {found.experiment_id}) or name "
                                "another")
            experiment_id = retry_race(lambda: _experiment_id(client, experiment), (MlflowException, SQLAlchemyError))
        return client, experiment_id
    except (MlflowException, SQLAlchemyError, OSError, sqlite3.Error) as exc:
        raise UserError(f"{key}: cannot open the MLflow store {redact(uri)!r} ({reason(exc, uri)})") from None


def close_stale_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the runs of ``experiment_id`` left RUNNING by a process of this host that no longer exists
    (kill -9, power cut); returns their ids. Runs of other hosts, or without a ``nas_worker`` tag, are left alone."""
    stale = [
        run.info.run_id
        for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'", max_results=50_000)
        if WORKER_TAG in run.data.tags and not alive(run.data.tags[WORKER_TAG])
    ]
    for run_id in stale:
        client.set_terminated(run_id, status="KILLED")
    return stale


def ui_link(uri: str, experiment_id: str) -> str:
    """The MLflow UI page of an experiment's runs in the "Model training" view. MLflow 3's UI opens in its GenAI view
    unless the browser chose otherwise: the view is a per-browser setting (``mlflow.workflowType``, default GenAI)
    that no experiment tag changes, and the ``workflowType`` query parameter selects it. A store that is not a
    tracking server is shown by ``mlflow ui``, at http://127.0.0.1:5000 by default."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else "http://127.0.0.1:5000"
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def flush_trackers() -> None:
    """Wait for every search tracker of this process to write what it holds (run in each worker before a search ends)."""
    for tracker in list(_TRACKERS.values()):
        tracker.flush()


def _experiment_id(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if new; tagged as a model-training experiment (``EXPERIMENT_KIND_TAG``)
    when it is not yet, so the UI opens it on its runs."""
    found = client.get_experiment_by_name(name)
    if found is None:
        try:
            return client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: TRAINING_KIND})
        except MlflowException:
            found = client.get_experiment_by_name(name)  # another process created it between the two calls
            if found is None:
                raise
    if EXPERIMENT_KIND_TAG not in found.tags:  # created before we tagged, or by hand; a kind someone chose stays
        client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
    return found.experiment_id


def _now_ms() -> int:
    return int(time.time() * 1000)


class SearchTracker:
    """Tracks one search. Create with ``SearchTracker.start``.

    Trial runs are written by one background thread, in order, while the next trial trains; ``flush`` (and ``finish``)
    waits for it and raises the first error it met.
    """

    def __init__(self, client: MlflowClient, experiment_id: str, parent_run_id: str, uri: str = "") -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.uri = uri
        self.commit = git_commit()  # once: the code this process runs
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow-writer")
        self._pending: list[Future] = []
        self._lock = threading.Lock()  # trials of parallel threads submit at once
        _TRACKERS[parent_run_id] = self

    @classmethod
    def attach(cls, uri: str, experiment_id: str, parent_run_id: str) -> SearchTracker:
        """The tracker of the search run ``parent_run_id``, for a worker that runs its trials: the search's own in its
        process, else one per worker process."""
        with _ATTACHING:  # a worker's threads attach at once: one tracker per process
            return _TRACKERS.get(parent_run_id) or cls(MlflowClient(tracking_uri=uri), experiment_id, parent_run_id,
                                                       uri)

    @classmethod
    def start(
        cls, uri: str, experiment: str, study_name: str, params: dict[str, Any], tags: dict[str, str], storage: str = "",
        study: Any = None, settings: dict[str, Any] | None = None,
    ) -> SearchTracker:
        """Open the parent run of study ``study_name`` in ``storage``: the existing one when the search is resumed,
        else a new one. Runs that a dead process left RUNNING are closed first.

        With the Optuna ``study`` itself, the run is the one recorded in it (user attribute ``mlflow_parent_run_id``,
        written here): a new study of an old name (deleted, or its storage file removed) gets a new run, not the old
        study's. A study from before that record, with trials, finds its run by the tags.

        ``params`` define the search and are logged once (MLflow params cannot change); ``settings`` may change
        between starts of one search (n_trials raised, other workers) and are tags, set at every start, as is the
        git commit the start runs."""
        client, experiment_id = open_tracking(uri, experiment)
        with refused_by_store(uri, "opening the search's run"):
            return cls._start(client, uri, experiment_id, study_name, params, tags, redact(storage), study,
                              settings)

    @classmethod
    def _start(cls, client: MlflowClient, uri: str, experiment_id: str, study_name: str, params: dict[str, Any],
               tags: dict[str, str], storage: str, study: Any, settings: dict[str, Any] | None) -> SearchTracker:
        close_stale_runs(client, experiment_id)
        recorded = study.user_attrs.get(PARENT_RUN_ATTR) if study is not None else None
        run_id = None
        if recorded:
            try:
                run = client.get_run(recorded)
                if run.info.experiment_id == experiment_id and run.info.lifecycle_stage == "active":
                    run_id = recorded
            except MlflowException:  # deleted for good, or recorded in another store
                pass
        elif study is None or study.get_trials(deepcopy=False):
            existing = client.search_runs(
                [experiment_id],
                filter_string=(f"tags.{STUDY_TAG} = '{study_name}' and tags.{STORAGE_TAG} = '{storage}' and "
                               f"tags.{ROLE_TAG} = 'search'"),
                max_results=1,
            )
            run_id = existing[0].info.run_id if existing else None
        if run_id is not None:
            client.update_run(run_id, status="RUNNING")
            for key, value in run_tags(git_commit()).items():
                client.set_tag(run_id, key, value)
        else:
            all_tags = {STUDY_TAG: study_name, STORAGE_TAG: storage, ROLE_TAG: "search", MLFLOW_RUN_NAME: study_name,
                        **run_tags(git_commit()), **tags}
            run_id = client.create_run(experiment_id, run_name=study_name, tags=all_tags).info.run_id
            client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        for key, value in (settings or {}).items():
            client.set_tag(run_id, key, str(value))
        if study is not None and recorded != run_id:
            study.set_user_attr(PARENT_RUN_ATTR, run_id)
        return cls(client, experiment_id, run_id, uri)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        """Run ``fn`` on the writer thread, after everything submitted before it."""
        with self._lock:
            done = [f for f in self._pending if f.done()]
            self._pending = [f for f in self._pending if not f.done()]
            future = self._writer.submit(fn, *args)
            self._pending.append(future)
        for finished in done:
            finished.result()  # surface a failed write at the next submission
        return future

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def start_trial(self, number: int, arch: str, params: dict[str, Any]) -> TrialRun:
        tags = {MLFLOW_PARENT_RUN_ID: self.parent_run_id, TRIAL_TAG: str(number), ROLE_TAG: "trial",
                **run_tags(self.commit)}
        batch = [Param("arch", arch), *(Param(k, str(v)) for k, v in params.items())]

        def create() -> Any:
            run = self.client.create_run(self.experiment_id, run_name=f"trial-{number}", tags=tags)
            self.client.log_batch(run.info.run_id, params=batch)
            return run

        return TrialRun(self, self.submit(create), arch)

    def trial_runs(self) -> list[Any]:
        return self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{self.parent_run_id}'", max_results=50_000
        )

    def reconcile(self, study: Any) -> None:
        """Make the runs of trials a killed process left behind agree with the study, the record of the search (once
        no trial runs: after ``settle``). A trial's writes reach MLflow on the writer thread, after the trial is told
        to Optuna, so a kill can leave a COMPLETE or PRUNED trial with a run RUNNING or KILLED and its curve (part)
        missing; and a lost (FAIL) trial's run has none of the epochs it trained. Each such run gets the trial's
        learning curve (its intermediate values, at the same steps) and, for a told trial, what its run would have
        had: ``n_params`` and ``train_seconds``, its prune tags, ``arch.json``, and FINISHED. A lost trial's run
        stays KILLED, tagged with its Optuna state and why."""
        trials = {str(t.number): t for t in study.get_trials(deepcopy=False)}
        runs = self.trial_runs()
        finished = {r.data.tags.get(TRIAL_TAG) for r in runs if r.info.status == "FINISHED"}
        for run in runs:
            trial = trials.get(run.data.tags.get(TRIAL_TAG, ""))
            if run.info.status not in ("RUNNING", "KILLED") or trial is None or trial.state.name == "RUNNING":
                continue
            run_id = run.info.run_id
            if str(trial.number) in finished:  # another attempt at the trial logged it (a dead Dask worker's)
                if run.info.status == "RUNNING":
                    self.client.set_terminated(run_id, status="KILLED")
                continue
            stamp = _now_ms()
            logged = {m.step for m in self.client.get_metric_history(run_id, "val_accuracy")}
            metrics = [Metric("val_accuracy", float(v), stamp, int(step))
                       for step, v in sorted(trial.intermediate_values.items()) if int(step) not in logged]
            attrs = trial.user_attrs
            tags = {TRIAL_STATE_TAG: trial.state.name}
            if trial.state.name in ("COMPLETE", "PRUNED"):
                metrics += [Metric(name, float(attrs[key]), stamp, 0)
                            for name, key in (("n_params", "n_params"), ("train_seconds", "seconds")) if key in attrs]
                if trial.state.name == "PRUNED" and "pruned_at_epoch" in attrs:
                    tags |= {PRUNED_AT_TAG: str(attrs["pruned_at_epoch"]),
                             PRUNE_REASON_TAG: str(attrs.get("prune_reason", ""))[:5000]}
                    metrics.append(Metric("pruned_at_epoch", float(attrs["pruned_at_epoch"]), stamp, 0))
            else:
                tags[FAIL_REASON_TAG] = str(attrs.get("fail_reason") or
                                            "lost: the process running it died (its heartbeat stopped)")[:5000]
            for start in range(0, len(metrics), 1000):  # MLflow's log_batch takes at most 1000 metrics
                self.client.log_batch(run_id, metrics=metrics[start:start + 1000])
            for key, value in tags.items():
                self.client.set_tag(run_id, key, value)
            if trial.state.name in ("COMPLETE", "PRUNED"):
                if "arch" in attrs and not self.client.list_artifacts(run_id, "arch.json"):
                    self.client.log_text(run_id, json.dumps({"arch": attrs["arch"]}, indent=2), "arch.json")
                self.client.set_terminated(run_id, status="FINISHED")
            elif run.info.status == "RUNNING":
                self.client.set_terminated(run_id, status="KILLED")

    def log_series(self, name: str, values: Iterable[float], steps: Iterable[int]) -> None:
        """A metric's history on the search's run, one value per trial at the trial's number as step (e.g. the
        hypervolume after each trial). A step already logged with the same value (by the run before a resume) is not
        logged again; one whose value changed is (the hypervolume's reference point moves with a worse trial)."""
        stamp = _now_ms()
        logged = {m.step: m.value for m in sorted(self.client.get_metric_history(self.parent_run_id, name),
                                                  key=lambda m: m.timestamp)}  # the latest value of each step
        batch = [Metric(name, float(v), stamp, int(step)) for v, step in zip(values, steps, strict=True)
                 if logged.get(int(step)) != float(v)]
        for start in range(0, len(batch), 1000):  # MLflow's log_batch takes at most 1000 metrics
            self.client.log_batch(self.parent_run_id, metrics=batch[start:start + 1000])

    def log_epoch(self, epoch: int, metrics: dict[str, float], artifacts: dict[str, str] | None = None,
                  texts: dict[str, str] | None = None) -> None:
        """A one-shot search's epoch on the search's run: ``metrics`` at step ``epoch``, files (path: artifact
        folder) and texts (artifact file: text). The metrics go last, so that an epoch whose metrics are logged is
        logged whole (``epochs_logged``); files a kill left half-written are written again over themselves."""
        for path, folder in (artifacts or {}).items():
            self.client.log_artifact(self.parent_run_id, path, folder)
        for name, text in (texts or {}).items():
            self.client.log_text(self.parent_run_id, text, name)
        stamp = _now_ms()
        batch = [Metric(k, float(v), stamp, epoch) for k, v in metrics.items()]
        for start in range(0, len(batch), 1000):  # MLflow's log_batch takes at most 1000 metrics
            self.client.log_batch(self.parent_run_id, metrics=batch[start:start + 1000])

    def epochs_logged(self, metric: str) -> set[int]:
        """The epochs ``log_epoch`` logged ``metric`` at on the search's run: after a kill, the ones a resumed
        search need not log again."""
        return {m.step for m in self.client.get_metric_history(self.parent_run_id, metric)}

    def finish(self, metrics: dict[str, float], artifacts: Iterable[str] = ()) -> None:
        self.flush()
        # A search that ends has no trial running: a child run still RUNNING is an attempt whose Dask worker died
        # (Dask ran the trial again on another worker, in another run).
        for run in self.trial_runs():
            if run.info.status == "RUNNING":
                self.client.set_terminated(run.info.run_id, status="KILLED")
        _log_changed(self.client, self.parent_run_id, metrics)  # a rerun that found nothing new adds no point
        for path in artifacts:
            self.client.log_artifact(self.parent_run_id, path)
        self.client.set_terminated(self.parent_run_id, status="FINISHED")
        self._writer.shutdown()

    def fail(self) -> None:
        """Close the search's run as FAILED, as far as the store lets it: the error that ends the search is the one
        to report, not a second one from a store that is failing too."""
        try:
            self.flush()
        except TRACKING_ERRORS:
            pass
        try:
            self.client.set_terminated(self.parent_run_id, status="FAILED")
        except TRACKING_ERRORS:
            pass
        self._writer.shutdown()


class TrialRun:
    """One trial's child run; ``on_epoch_end`` is a training-loop callback. Writes go through the tracker's writer
    thread: per-epoch metrics in one batch at most every ``flush_seconds`` and when the trial ends."""

    flush_seconds = 10.0

    def __init__(self, tracker: SearchTracker, created: Future, arch: str) -> None:
        self.tracker, self.created, self.arch = tracker, created, arch
        self.buffer: list[Metric] = []
        self.last_flush = time.monotonic()

    @property
    def run_id(self) -> str:
        return self.created.result().info.run_id

    def _flush(self) -> None:
        batch, self.buffer, self.last_flush = self.buffer, [], time.monotonic()
        if batch:
            self.tracker.submit(lambda: self.tracker.client.log_batch(self.run_id, metrics=batch))

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """The metrics after ``epoch`` (0-based), at step ``epoch + 1``: the epochs trained, as the trial's Optuna
        intermediate values and ``pruned_at_epoch`` count them."""
        stamp = _now_ms()
        self.buffer += [Metric(k, float(v), stamp, epoch + 1) for k, v in metrics.items()]
        if time.monotonic() - self.last_flush >= self.flush_seconds:
            self._flush()

    def finish(self, metrics: dict[str, float]) -> None:
        stamp = _now_ms()
        self.buffer += [Metric(k, float(v), stamp, 0) for k, v in metrics.items()]
        self._flush()
        self.tracker.submit(self._close)

    def _close(self) -> None:
        # The artifact repository straight from the run's URI: client.log_text would look the run up again.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "arch.json")
            with open(path, "w") as f:
                json.dump({"arch": self.arch}, f, indent=2)
            get_artifact_repository(self.created.result().info.artifact_uri).log_artifact(path)
        self.tracker.client.set_terminated(self.run_id, status="FINISHED")

    def prune(self, epoch: int, reason: str) -> None:
        """Close the run of a trial the pruner stopped: FINISHED (a pruned trial is not a failure), tagged with its
        Optuna state PRUNED, the epoch it stopped at and why; its curve holds the epochs it trained."""
        self._flush()

        def close() -> None:
            tags = {TRIAL_STATE_TAG: "PRUNED", PRUNED_AT_TAG: str(epoch), PRUNE_REASON_TAG: reason[:5000]}
            for key, value in tags.items():
                self.tracker.client.set_tag(self.run_id, key, value)
            self.tracker.client.log_metric(self.run_id, "pruned_at_epoch", epoch)
            self.tracker.client.set_terminated(self.run_id, status="FINISHED")

        self.tracker.submit(close)

    def fail(self, reason: str = "") -> None:
        """Close the run as FAILED; ``reason`` (why the trial failed) becomes its ``fail_reason`` tag."""
        self._flush()

        def close() -> None:
            if reason:
                self.tracker.client.set_tag(self.run_id, FAIL_REASON_TAG, reason)
            self.tracker.client.set_terminated(self.run_id, status="FAILED")

        self.tracker.submit(close)


def log_bench(uri: str, experiment: str, params: dict[str, Any], per_strategy: dict[str, dict[str, float]],
              artifacts: Iterable[str]) -> str:
    """One parent run per benchmark comparison, one child run per strategy; returns the parent run id."""
    client, experiment_id = open_tracking(uri, experiment, "--tracking-uri", "--experiment")
    tags = run_tags(git_commit())
    parent = client.create_run(experiment_id, run_name="bench", tags={ROLE_TAG: "bench", **tags}).info.run_id
    client.log_batch(parent, params=[Param(k, str(v)) for k, v in params.items()])
    stamp = _now_ms()
    for name, metrics in per_strategy.items():
        child = client.create_run(experiment_id, run_name=name,
                                  tags={MLFLOW_PARENT_RUN_ID: parent, ROLE_TAG: "bench-strategy", **tags}).info.run_id
        client.log_batch(child, metrics=[Metric(k, float(v), stamp, 0) for k, v in metrics.items()],
                         params=[Param("strategy", name)])
        client.set_terminated(child)
    for path in artifacts:
        client.log_artifact(parent, path)
    client.set_terminated(parent)
    return parent


def _log_changed(client: MlflowClient, run_id: str, metrics: dict[str, float]) -> None:
    """``metrics`` at step 0 on run ``run_id``, but those whose last value there is the same: a stage run again with
    nothing new (or two stages reporting one number) adds no second point."""
    latest = client.get_run(run_id).data.metrics
    stamp = _now_ms()
    batch = [Metric(k, float(v), stamp, 0) for k, v in metrics.items() if latest.get(k) != float(v)]
    if batch:
        client.log_batch(run_id, metrics=batch)


def log_results(uri: str, run_id: str, metrics: dict[str, float] | None = None,
                artifacts: Iterable[str | os.PathLike[str]] = (), folder: str | None = None) -> None:
    """Log ``metrics`` (one value each) and ``artifacts`` (files or folders, under ``folder``) to the run ``run_id``,
    finished or not: what a later stage found about the model an earlier one made."""
    client = MlflowClient(tracking_uri=uri)
    if metrics:
        _log_changed(client, run_id, metrics)
    for path in artifacts:
        client.log_artifact(run_id, str(path), folder)
