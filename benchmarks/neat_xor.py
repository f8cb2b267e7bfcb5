"""NEAT's XOR experiment (Stanley & Miikkulainen 2002, section 4.1), N independent seeded runs.

Prints the mean and spread of the generations, evaluations and hidden nodes needed to solve XOR; the paper reports
32 generations on average over 100 runs (4,755 evaluations, 2.35 hidden nodes, worst run 90 generations).
Usage: python benchmarks/neat_xor.py [--runs 100]
Ends with: RESULT solved=... generations_mean=... generations_worst=... evaluations_mean=... hidden_nodes_mean=...
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from tqdm import tqdm

from nas.neat.xor import solve_xor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    start = time.perf_counter()
    results = [solve_xor(seed) for seed in tqdm(range(args.runs), desc="XOR runs")]
    solved = [r for r in results if r.solved]
    generations = np.array([r.generations for r in solved])
    print(f"solved {len(solved)}/{args.runs} runs in {time.perf_counter() - start:.1f} s")
    print(f"generations: mean {generations.mean():.1f} (paper 32; target 24-40), median {np.median(generations):.0f}, "
          f"worst {generations.max()}")
    print(f"evaluations: mean {np.mean([r.evaluations for r in solved]):.0f} (paper 4,755)")
    print(f"hidden nodes of the solution: mean {np.mean([r.hidden_nodes for r in solved]):.2f} (paper 2.35); "
          f"enabled connections {np.mean([r.connections for r in solved]):.2f} (paper 7.48)")
    print(f"RESULT solved={len(solved)}/{args.runs} generations_mean={generations.mean():.1f} "
          f"generations_worst={generations.max()} evaluations_mean={np.mean([r.evaluations for r in solved]):.0f} "
          f"hidden_nodes_mean={np.mean([r.hidden_nodes for r in solved]):.2f}")


if __name__ == "__main__":
    main()
