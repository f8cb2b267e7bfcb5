import numpy as np
import pytest

from nas.spaces import SPACES
from nas.strategies import STRATEGIES
from nas.strategies.base import Observation, Proposal
from nas.strategies.bohb import BOHB
from nas.tabular import TabularBenchmark, run_protocol

space = SPACES["nb201"]
HIGH = 200 / 12  # what a 200-epoch evaluation costs, in 12-epoch times


@pytest.fixture(scope="module")
def bench() -> TabularBenchmark:
    return TabularBenchmark.from_csv()


class Scripted:
    """Asks a fixed list (Proposals or plain architectures), then repeats its last ask; records what it is told."""

    def __init__(self, asks):
        self.asks, self.i, self.told = list(asks), 0, []

    def ask(self):
        self.i += 1
        return self.asks[min(self.i, len(self.asks)) - 1]

    def observe(self, observation: Observation):
        self.told.append(observation)

    def tell(self, arch, score):
        self.told.append((arch, score))


def archs(n: int) -> list:
    return [space.sample(np.random.default_rng(k)) for k in range(n)]


def test_each_arch_and_fidelity_is_paid_once_and_200_epochs_cost_200_over_12(bench):
    a, b, c = archs(3)
    strategy = Scripted([Proposal(a, 12), Proposal(a, 200), Proposal(a, 200), Proposal(b, 1), Proposal(b, 100),
                         Proposal(a, 9), c])
    run = run_protocol(strategy, bench, budget_s=1e9, max_repeats=5, fidelity="multi")
    t = {x: bench[x].train_time_12_s for x in (a, b, c)}
    assert run.sim_time_s == pytest.approx(t[a] * (1 + HIGH) + t[b] * (1 + HIGH) + t[c])
    assert (run.queries, run.queries_200) == (3, 2) and len(run.anytime) == 5
    # A budget up to 12 buys val_acc_12, a larger one val_acc_200; repeats are told the same value, for free.
    assert strategy.told[:6] == [Observation(a, (bench[a].val_acc_12,), 12.0),
                                 Observation(a, (bench[a].val_acc_200,), 200.0),
                                 Observation(a, (bench[a].val_acc_200,), 200.0),
                                 Observation(b, (bench[b].val_acc_12,), 12.0),
                                 Observation(b, (bench[b].val_acc_200,), 200.0),
                                 Observation(a, (bench[a].val_acc_12,), 12.0)]
    assert strategy.told[6] == (c, bench[c].val_acc_12)  # a plain architecture: the 12-epoch evaluation, via tell


def test_the_reported_arch_is_the_best_at_200_epochs_once_any_was_evaluated_there(bench):
    pool = archs(40)
    top12 = max(pool, key=lambda x: bench[x].val_acc_12)
    at200 = [x for x in pool if x != top12][:3]
    strategy = Scripted([*(Proposal(x, 12) for x in pool), *(Proposal(x, 200) for x in at200)])
    run = run_protocol(strategy, bench, budget_s=1e9, max_repeats=3, fidelity="multi")
    best200 = max(at200, key=lambda x: bench[x].val_acc_200)
    assert run.arch == str(best200) and run.test_acc_200 == bench[best200].test_acc_200
    # Before the first 200-epoch evaluation the report was the best by val_acc_12; after, the best at 200 epochs.
    assert run.anytime[len(pool) - 1][1] == bench[top12].test_acc_200
    assert run.anytime[-1][1] == bench[best200].test_acc_200
    only12 = run_protocol(Scripted([Proposal(x, 12) for x in pool]), bench, budget_s=1e9, max_repeats=3,
                          fidelity="multi")
    assert only12.arch == str(top12) and only12.queries_200 == 0


def test_a_200_epoch_evaluation_that_does_not_fit_ends_the_run(bench):
    a, b = archs(2)
    budget = bench[a].train_time_12_s + bench[b].train_time_12_s * HIGH - 1
    run = run_protocol(Scripted([Proposal(a, 12), Proposal(b, 200), Proposal(a, 12)]), bench, budget_s=budget,
                       max_repeats=3, fidelity="multi")
    assert (run.queries, run.queries_200) == (1, 0) and run.sim_time_s == bench[a].train_time_12_s


def test_single_fidelity_ignores_budgets_and_tells_12(bench):
    a, b = archs(2)
    strategy = Scripted([Proposal(a, 200), Proposal(b, 12), Proposal(a, 12)])
    run = run_protocol(strategy, bench, budget_s=1e9, max_repeats=2)
    assert run.sim_time_s == bench[a].train_time_12_s + bench[b].train_time_12_s
    assert (run.queries, run.queries_200) == (2, 0)
    assert [o.budget for o in strategy.told] == [12.0] * 4
    assert strategy.told[0] == Observation(a, (bench[a].val_acc_12,), 12.0)


@pytest.mark.parametrize("name", ["random", "regularized_evolution", "local_search"])
def test_single_fidelity_strategies_run_the_same_under_both(bench, name):
    single = run_protocol(STRATEGIES[name](space, seed=3), bench, budget_s=3000)
    multi = run_protocol(STRATEGIES[name](space, seed=3), bench, budget_s=3000, fidelity="multi")
    assert single == multi and multi.queries_200 == 0


def test_bohb_buys_both_fidelities_within_the_budget_and_is_seeded(bench):
    def bohb(seed):
        return BOHB(space, seed, min_budget=12, max_budget=200, eta=200 / 12)

    run = run_protocol(bohb(0), bench, fidelity="multi")
    assert run.queries >= 17 and run.queries_200 >= 1 and run.sim_time_s <= 12_000
    assert run == run_protocol(bohb(0), bench, fidelity="multi")
    single = run_protocol(bohb(0), bench)
    assert single.queries_200 == 0 and single.queries > run.queries


def test_unknown_fidelity(bench):
    with pytest.raises(ValueError, match="fidelity 'double': allowed single, multi"):
        run_protocol(STRATEGIES["random"](space, seed=0), bench, fidelity="double")
