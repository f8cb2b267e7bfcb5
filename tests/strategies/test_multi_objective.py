"""Multi-objective regularized evolution, LEMONADE and EHVI: who becomes a parent, what is kept, what a candidate
would add to the front, and replay."""

import numpy as np
import optuna
import pytest
from scipy.stats import norm, yeojohnson

from nas.search.pareto import front_mask, hypervolume
from nas.spaces import SPACES
from nas.spaces.nb201 import NB201Arch
from nas.strategies import make_sampler, make_strategy
from nas.strategies.base import Observation
from nas.strategies.ehvi import _NODES, _WEIGHTS, EHVI, improvement, yeojohnson_inverse
from nas.strategies.lemonade import LEMONADE, inverse_density
from nas.strategies.mo_regularized_evolution import MORegularizedEvolution, crowded_order
from nas.strategies.optuna_sampler import FAIL_REASON_ATTR, SLOT_ATTR, violation
from nas.strategy_registry import is_multi_objective

space = SPACES["nb201"]
TWO = ("maximize", "minimize")
# Architectures 6 op changes apart from each other: a child one mutation from one of them is from no other.
UNIFORM = [NB201Arch((op,) * 6) for op in ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")]


def parent_of(child: NB201Arch) -> int:
    """Index in UNIFORM of the architecture ``child`` is one mutation from."""
    (index,) = [i for i, a in enumerate(UNIFORM) if sum(x != y for x, y in zip(a.ops, child.ops)) == 1]
    return index


def objectives(arch: NB201Arch) -> tuple[float, float]:
    """A synthetic (accuracy, params) trade-off: convolutions buy accuracy and cost parameters."""
    conv = sum(op.startswith("nor_conv") for op in arch.ops)
    return 50.0 + 5.0 * conv + sum(op == "skip_connect" for op in arch.ops), 0.1 + 0.2 * conv


def play(strategy, steps: int, log: list | None = None) -> list:
    """Asks and observes ``steps`` times (every 7th trial pruned, every 11th failed, every 5th infeasible)."""
    proposals = []
    for i in range(steps):
        arch = strategy.ask()
        proposals.append(arch)
        values = objectives(arch)
        if i % 11 == 10:
            observation = Observation(arch, (), state="failed")
        elif i % 7 == 6:
            observation = Observation(arch, (values[0] - 10.0, values[1]), budget=3, state="pruned")
        else:
            observation = Observation(arch, values, feasible=i % 5 != 4)
        strategy.observe(observation)
        if log is not None:
            log.append(observation)
    return proposals


def test_crowded_order_ranks_fronts_then_spread_and_infeasible_last():
    cost = np.array([[0.0, 3.0], [1.0, 2.0], [2.0, 1.0], [3.0, 0.0], [3.0, 3.0], [-1.0, -1.0]])
    rank, distance = crowded_order(cost, np.array([True, True, True, True, True, False]))
    assert rank.tolist() == [0, 0, 0, 0, 1, 2]  # the infeasible row dominates everything and still ranks last
    assert np.isinf(distance[[0, 3]]).all() and np.isfinite(distance[[1, 2]]).all()  # the front's extremes first


def test_tournament_prefers_front_members():
    """Members 0, 1 are on the front; 2 is dominated by 1, 3 and 4 by both. With S = P drawn with replacement a
    sample holds no front member with probability (3/5)^5 < 8 %."""
    values = [(60.0, 0.1), (70.0, 0.5), (65.0, 0.6), (50.0, 0.9), (40.0, 1.0)]
    re = MORegularizedEvolution(space, seed=0, directions=TWO, population_size=5, sample_size=5)
    re.replay([Observation(a, v) for a, v in zip(UNIFORM, values)])
    parents = [parent_of(re.ask()) for _ in range(300)]
    assert sum(p in (0, 1) for p in parents) > 0.85 * 300
    assert {0, 1} <= set(parents)  # both ends of the front breed (crowding distance ties them)


def test_infeasible_members_rank_below_feasible_ones():
    values = [(99.0, 0.0), (50.0, 1.0), (40.0, 2.0), (30.0, 3.0), (20.0, 4.0)]
    re = MORegularizedEvolution(space, seed=0, directions=TWO, population_size=5, sample_size=5)
    re.replay([Observation(a, v, feasible=i > 0) for i, (a, v) in enumerate(zip(UNIFORM, values))])
    parents = [parent_of(re.ask()) for _ in range(300)]
    assert parents.count(0) == 0  # it dominates all, but breaks a constraint: chosen only if the sample is all it
    assert parents.count(1) > 0.5 * 300


def test_failed_trials_are_not_members_pruned_ones_are():
    re = MORegularizedEvolution(space, seed=0, directions=TWO, population_size=5, sample_size=2)
    re.observe(Observation(UNIFORM[0], (), state="failed"))
    re.observe(Observation(UNIFORM[1], (40.0, 0.3), budget=2, state="pruned"))
    assert [m[0] for m in re.population] == [UNIFORM[1]]
    with pytest.raises(ValueError, match="1 values for 2 objectives"):
        re.observe(Observation(UNIFORM[2], (40.0,)))


def test_inverse_density_favours_sparse_points_and_survives_degenerate_sets():
    points = np.array([[0.10], [0.11], [0.12], [0.13], [1.0]])
    weights = inverse_density(points, points)
    assert weights.argmax() == 4 and weights[4] == 1.0 and (weights[:4] < 0.5).all()
    candidates = inverse_density(points, np.array([[0.115], [0.6]]))
    assert candidates[1] > 2 * candidates[0]  # a child between the cluster and the outlier is the one to train
    for degenerate in (np.array([[0.3]]), np.array([[0.3], [0.3], [0.3]]), np.zeros((4, 0))):
        assert inverse_density(degenerate, degenerate).tolist() == [1.0] * len(degenerate)
    collinear = np.array([[0.1, 0.2], [0.2, 0.4], [0.3, 0.6]])  # a singular covariance for a full-matrix KDE
    assert np.isfinite(inverse_density(collinear, collinear)).all()


def test_inverse_density_on_a_log_scale_weighs_sizes_by_ratio():
    """Sizes a factor of 10 apart: on a linear scale the largest looks alone and outweighs the rest ~3 : 1; on a log
    scale they are evenly spread, so the two ends (one neighbour each) weigh the same, and more than the middle."""
    sizes = np.array([[0.01], [0.1], [1.0], [10.0]])
    linear, log = inverse_density(sizes, sizes), inverse_density(sizes, sizes, log=True)
    assert linear.argmax() == 3 and (linear[:3] < 0.5).all()
    assert np.isclose(log[0], log[3]) and np.isclose(log[1], log[2]) and log[1] < log[0]
    with_zero = np.array([[0.0], [0.1], [1.0], [10.0]])  # no logarithm: the linear scale
    assert inverse_density(with_zero, with_zero, log=True).tolist() == inverse_density(with_zero, with_zero).tolist()


def test_lemonade_parents_favour_the_sparse_part_of_the_front():
    """The front: four architectures crowded at small sizes and one alone at a large size. Parents are drawn
    ∝ 1 / density, so the lone one breeds far more than a fifth of the children."""
    values = [(60.0, 0.10), (61.0, 0.11), (62.0, 0.12), (63.0, 0.13), (80.0, 1.0)]
    sizes = dict(zip(UNIFORM, (v[1] for v in values)))
    counts = np.zeros(5)
    for seed in range(20):
        lemonade = LEMONADE(space, seed=seed, directions=TWO, initial=5, n_pc=10, n_ac=10,
                            cheap=lambda arch: (None, sizes.get(arch, 0.5)))
        lemonade.replay([Observation(a, v) for a, v in zip(UNIFORM, values)])
        for _ in range(10):
            counts[parent_of(lemonade.ask())] += 1
    assert counts[4] / counts.sum() > 0.4 and (counts[:4] > 0).all()


def test_lemonade_accepts_children_in_sparse_regions_of_the_cheap_objectives():
    """The population's sizes are crowded around 0.12; a child that changed one of the first three edges has size 5
    (far from them), one that changed one of the last three, 0.12: those accepted for training are mostly the far
    ones, though half the children generated are each."""
    sizes = dict(zip(UNIFORM, (0.10, 0.11, 0.12, 0.13, 0.14)))

    def cheap(arch):
        return (None, sizes.get(arch, 5.0 if len(set(arch.ops[:3])) > 1 else 0.12))

    far = 0
    for seed in range(10):
        lemonade = LEMONADE(space, seed=seed, directions=TWO, initial=5, n_pc=30, n_ac=5, cheap=cheap)
        lemonade.replay([Observation(a, (60.0 + i, sizes[a])) for i, a in enumerate(UNIFORM)])
        far += sum(cheap(lemonade.ask())[1] == 5.0 for _ in range(5))
    assert far > 0.8 * 50


def test_lemonade_advances_a_generation_only_when_all_of_it_is_observed():
    lemonade = LEMONADE(space, seed=0, directions=TWO, initial=4, n_pc=6, n_ac=3)
    first = [lemonade.ask() for _ in range(4)]
    extra = lemonade.ask()  # a fifth worker: a proposal outside the generation, which does not advance
    assert lemonade.generation == 0 and extra not in first
    for arch in [*first[:3], extra]:
        lemonade.observe(Observation(arch, objectives(arch)))
    lemonade.ask()
    assert lemonade.generation == 0  # one of the first generation is still out
    lemonade.observe(Observation(first[3], objectives(first[3])))
    lemonade.ask()
    assert lemonade.generation == 1


def test_lemonade_keeps_only_the_feasible_front():
    lemonade = LEMONADE(space, seed=0, directions=TWO, initial=4)
    lemonade.replay([Observation(UNIFORM[0], (90.0, 0.1), feasible=False), Observation(UNIFORM[1], (60.0, 0.5)),
                     Observation(UNIFORM[2], (70.0, 0.4)), Observation(UNIFORM[3], (20.0, 0.9), state="failed")])
    assert [m[0] for m in lemonade.population] == [UNIFORM[2]]  # 1 is dominated, 0 infeasible, 3 failed


@pytest.mark.parametrize("cls,options", [(MORegularizedEvolution, {}), (LEMONADE, {}), (EHVI, {"candidates": 200})])
def test_same_seed_same_proposals_and_replay_rebuilds_the_state(cls, options):
    def make(seed):
        return cls(space, seed=seed, directions=TWO, cheap=lambda arch: (None, objectives(arch)[1]), **options)

    a, b, c = make(3), make(3), make(4)
    log: list = []
    assert play(a, 60, log) == play(b, 60)
    assert play(make(3), 60) != play(c, 60)
    rebuilt = make(3)
    rebuilt.replay(log)
    assert play(a, 30) == play(rebuilt, 30)


def test_registry_and_factories_pass_the_objectives():
    assert is_multi_objective("mo_re") and is_multi_objective("lemonade") and is_multi_objective("motpe")
    assert not is_multi_objective("regularized_evolution") and not is_multi_objective("bananas")
    def cheap(arch):
        return (None, 1.0)

    strategy = make_strategy("mo_re", space, 0, directions=TWO, cheap=cheap)
    assert strategy.directions == TWO and strategy.cheap is cheap
    assert make_sampler("lemonade", space, 0, directions=TWO).strategy.directions == TWO
    nsga2 = make_strategy("nsga2", space, 0, directions=TWO, constrained=True)
    assert nsga2.study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert nsga2.study.sampler._constraints_func is violation
    # Without constraints, none: Optuna's samplers would warn of (GPSampler refuse) trials without their values.
    assert make_strategy("nsga2", space, 0, directions=TWO).study.sampler._constraints_func is None
    assert make_sampler("motpe", space, 0, directions=TWO, constrained=True)._options["constraints_func"] is violation
    assert "constraints_func" not in make_sampler("motpe", space, 0, directions=TWO)._options


def _volume(points: np.ndarray, reference: np.ndarray) -> float:
    """Hypervolume; with one objective, the length from the best point to the reference."""
    return hypervolume(points, reference) if points.shape[1] > 1 else max(0.0, reference[0] - points.min())


@pytest.mark.parametrize("cheap_objectives", [0, 1, 2])
def test_ehvi_improvement_is_the_hypervolume_a_candidate_adds(cheap_objectives):
    rng = np.random.default_rng(cheap_objectives)
    for _ in range(20):
        cost = rng.random((8, 1 + cheap_objectives))
        front = cost[front_mask(cost)]
        reference = np.full(1 + cheap_objectives, 1.1)
        candidate_cheap = rng.random(cheap_objectives) * 1.2
        u = rng.random(6) * 1.4 - 0.2  # some beyond the reference, some beyond every front member
        gain = improvement(u[None, :], candidate_cheap[None, :], front[:, 0], front[:, 1:], reference)[0]
        for value, got in zip(u, gain):
            added = _volume(np.vstack([front, [value, *candidate_cheap]]), reference) - _volume(front, reference)
            assert got == pytest.approx(added, abs=1e-12)


def test_ehvi_with_one_objective_is_expected_improvement():
    """Quadrature of the improvement over the best (one objective) against Jones et al.'s closed form."""
    best, mean, std = 0.3, np.array([0.1, 0.3, 0.5, 0.9]), np.array([0.05, 0.2, 0.1, 0.3])
    nodes = mean[:, None] + std[:, None] * _NODES[None, :]
    got = improvement(nodes, np.zeros((4, 0)), np.array([best]), np.zeros((1, 0)), np.array([2.0])) @ _WEIGHTS
    z = (best - mean) / std  # costs: lower is better
    assert got == pytest.approx((best - mean) * norm.cdf(z) + std * norm.pdf(z), rel=0.03, abs=1e-4)


@pytest.mark.parametrize("lmbda", [-1.5, 0.0, 0.7, 2.0, 3.2])
def test_yeojohnson_inverse_undoes_scipys_transform(lmbda):
    x = np.array([-90.0, -12.5, -1.0, -0.01, 0.0, 0.3, 4.0, 20.0])
    assert yeojohnson_inverse(yeojohnson(x, lmbda), lmbda) == pytest.approx(x, rel=1e-9, abs=1e-9)


def test_ehvi_needs_the_objectives_it_does_not_model_known_before_training():
    with pytest.raises(ValueError, match="every objective but one known before training"):
        EHVI(space, directions=TWO)
    strategy = EHVI(space, directions=("maximize", "minimize", "minimize"), cheap=lambda arch: (None, 1.0, None),
                    initial=2, candidates=10)
    for value in (60.0, 70.0):
        strategy.observe(Observation(strategy.ask(), (value, 1.0, 2.0)))
    with pytest.raises(ValueError, match="exactly one objective not known before training"):
        strategy.ask()


def test_ehvi_finds_more_of_the_nb201_front_than_random_search():
    """On the shipped NB201 table (accuracy against parameters): benchmarks/multi_objective.py's problem, with a
    smaller pool of candidates."""
    from nas.tabular.benchmark import TabularBenchmark
    from nas.tabular.multi_objective import DIRECTIONS, run_multi_objective

    bench = TabularBenchmark.from_csv()

    def fraction(name, seed):
        strategy = make_strategy(name, space, seed, {"candidates": 500} if name == "ehvi" else {}, DIRECTIONS,
                                 cheap=lambda arch: (None, bench[arch].params_m))
        return run_multi_objective(strategy, bench, 12_000.0).hv_fraction

    assert np.mean([fraction("ehvi", s) for s in range(4)]) > np.mean([fraction("optuna_random", s) for s in range(4)])


def test_ehvi_never_proposes_an_architecture_a_worker_is_still_training():
    # A pool of little more than the front's neighbours: each refit would pick the same best ones again.
    strategy = EHVI(space, seed=1, directions=TWO, cheap=lambda arch: (None, objectives(arch)[1]), initial=4,
                    candidates=1, batch=2)
    for _ in range(4):
        arch = strategy.ask()
        strategy.observe(Observation(arch, objectives(arch)))
    asked = [strategy.ask() for _ in range(12)]  # six refits, none of it observed yet
    assert len(set(asked)) == 12 and not set(asked) & strategy.evaluated


@pytest.mark.parametrize("lag", [1, 4])
def test_nsga2_generations_are_population_size_completed_trials_and_every_member_can_be_a_parent(lag):
    """The k-th completed trial (slot order) is a member of generation k // P, and a trial is bred from the latest
    generation its view holds whole: with ``lag`` > 1, Optuna's own count made generations of P + lag - 1 trials
    whose last lag - 1 were never parents. A failed trial is no member (nor is a pruned one), as in Optuna: a
    generation of one completed trial and a failure would leave crossover a single parent."""
    space, size, failed = SPACES["nb201"], 6, {1, 7, 8, 20}
    sampler = make_sampler("nsga2", space, 0, {"population_size": size}, lag=lag, directions=TWO)
    study = optuna.create_study(directions=TWO, sampler=sampler)
    for slot in range(40):
        trial = study.ask()
        trial.set_user_attr(SLOT_ATTR, slot)
        arch = space.suggest(trial)
        if slot in failed:  # its training diverged: told as a failure of the architecture
            trial.set_user_attr(FAIL_REASON_ATTR, "diverged")
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, objectives(arch))
    completed = [t.number for t in study.trials if t.number not in failed]
    members = {g: set(completed[g * size:(g + 1) * size]) for g in range(len(completed) // size)}
    number = {t._trial_id: t.number for t in study.trials}
    parents = {int(k.rsplit(":", 1)[1]): {number[i] for i in ids} for k, ids in study.system_attrs.items()
               if k.startswith("NSGAIISampler:parent:")}
    assert sorted(parents) == [1, 2, 3, 4, 5]  # the last trials see 35 (lag 1) and 32 (lag 4) completed
    for generation, chosen in parents.items():  # from the generation before it and the parents it was bred from
        assert len(chosen) == size and chosen <= members[generation - 1] | parents.get(generation - 1, set())
    last = {max(m) for m in members.values()}  # each generation's last member: hidden from the next's first child
    assert last & set().union(*parents.values())
