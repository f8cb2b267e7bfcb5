import re

import numpy as np
import pandas as pd
import pytest

from nas.errors import UserError
from nas.spaces import SPACES
from nas.strategies import STRATEGIES
from nas.tabular import NB201_CIFAR10, TabularBenchmark, run_protocol
from tests.conftest import SHARED_TABLE

space = SPACES["nb201"]


@pytest.fixture(scope="module")
def bench() -> TabularBenchmark:
    return TabularBenchmark.from_csv()


def test_shipped_table_is_the_whole_space_and_matches_the_paper(bench):
    assert len(bench.entries) == 15_625 and set(bench.entries) == set(space.all())
    arch, acc = bench.best()
    assert acc == pytest.approx(94.37, abs=0.005)
    assert max(e.val_acc_200 for e in bench.entries.values()) == pytest.approx(91.61, abs=0.005)


@pytest.mark.skipif(not SHARED_TABLE.is_file(), reason="needs ../shared/benchmarks/nb201_cifar10.csv")
def test_shipped_table_is_the_shared_one():
    assert NB201_CIFAR10.read_bytes() == SHARED_TABLE.read_bytes()


def _small_table(tmp_path, rows=20):
    table = pd.read_csv(NB201_CIFAR10, nrows=rows)
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    return table, path


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda t: t.drop(columns=["val_acc_12"]), r"missing column\(s\) val_acc_12; a table needs arch, val_acc_12"),
        (lambda t: t.assign(train_time_12_s=t["train_time_12_s"].astype(object).where(t.index != 3, "fast")),
         "row 5: train_time_12_s is 'fast'; it must be a number >= 0"),
        (lambda t: t.assign(train_time_12_s=t["train_time_12_s"].where(t.index != 1, -1.0)),
         "row 3: train_time_12_s is '-1.0'; it must be a number >= 0"),
        (lambda t: t.assign(params_m=t["params_m"].where(t.index != 0, np.inf)), "row 2: params_m is 'inf'"),
        (lambda t: t.assign(val_acc_12=t["val_acc_12"].where(t.index != 4, 101.0)),
         "row 6: val_acc_12 is '101.0'; it must be a percentage 0..100"),
        (lambda t: t.assign(test_acc_200=t["test_acc_200"].where(t.index != 4)), "row 6: test_acc_200 is missing"),
        (lambda t: t.assign(arch=t["arch"].where(t.index != 2, "|conv~0|")), "row 4: NB201 string needs 3 nodes"),
        (lambda t: pd.concat([t, t.iloc[[0]]]), "appears twice"),
        (lambda t: t.iloc[:0], "holds 0 of the 15,625 architectures of the NB201 space"),
    ],
)
def test_bad_tables_name_file_and_problem(tmp_path, mutate, message):
    table, path = _small_table(tmp_path)
    mutate(table).to_csv(path, index=False)
    with pytest.raises(UserError, match=message) as info:
        TabularBenchmark.from_csv(path)
    assert str(info.value).startswith(str(path))


def test_a_partial_table_names_an_architecture_it_lacks(tmp_path):
    table, path = _small_table(tmp_path)
    with pytest.raises(UserError, match=r"holds 20 of the 15,625 architectures of the NB201 space") as info:
        TabularBenchmark.from_csv(path)
    named = re.search(r"\(missing, e\.g\., (\S+)\)", str(info.value)).group(1)
    assert space.decode(named) in set(space.all()) and named not in set(table["arch"])


def test_an_empty_file_is_not_a_table(tmp_path):
    (tmp_path / "t.csv").write_text("")
    with pytest.raises(UserError, match="t.csv: not a CSV table"):
        TabularBenchmark.from_csv(tmp_path / "t.csv")


def test_missing_table(tmp_path):
    with pytest.raises(UserError, match="no such benchmark table"):
        TabularBenchmark.from_csv(tmp_path / "none.csv")


def test_protocol_charges_each_architecture_once_and_stops_at_the_budget(bench):
    class Repeating:
        """Proposes the same three architectures over and over."""

        def __init__(self):
            self.archs, self.i = [space.sample(np.random.default_rng(k)) for k in range(3)], 0

        def ask(self):
            self.i += 1
            return self.archs[self.i % 3]

        def tell(self, arch, score):
            pass

    strategy = Repeating()
    run = run_protocol(strategy, bench, budget_s=1e9, max_repeats=50)
    assert run.queries == 3 and strategy.i == 3 + 50  # three new, then 50 repeats in a row: converged
    assert run.sim_time_s == pytest.approx(sum(bench[a].train_time_12_s for a in strategy.archs))
    best = max(strategy.archs, key=lambda a: bench[a].val_acc_12)  # best by the signal, not by test accuracy
    assert run.arch == str(best) and run.test_acc_200 == bench[best].test_acc_200

    tight = run_protocol(STRATEGIES["random"](space, seed=0), bench, budget_s=500)
    assert tight.sim_time_s <= 500 and len(tight.anytime) == tight.queries
    times = [t for t, _ in tight.anytime]
    assert times == sorted(times)


def test_protocol_is_seeded(bench):
    a = run_protocol(STRATEGIES["regularized_evolution"](space, seed=4), bench)
    b = run_protocol(STRATEGIES["regularized_evolution"](space, seed=4), bench)
    assert a == b
