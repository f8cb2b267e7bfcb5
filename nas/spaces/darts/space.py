"""The DARTS cell search space's pure functions (``search.space: darts``): sampling, mutation, neighbours, the
encodings the predictors use, NEAT's genes, Optuna's parameters, and ``build``.

The discrete space is DARTS's derived one (Liu et al. 2019, §2.1 and ``_parse``): in each of the two cells, node
``j`` takes two distinct earlier nodes, each through one of the seven non-``none`` operations (``none`` is a
candidate of the supernet's mixed ops, never of a derived cell), and the output concatenates nodes 2..5. That is
(7**2)**4 * 1 * 3 * 6 * 10 = 1.0e9 cells, and pairs of them: about 10**18 architectures, as the paper counts.
"""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import optuna
from torch import nn

from nas.spaces.darts.arch import CELLS, OPS, PRIMITIVES, STEPS, Genotype, decode, encode
from nas.spaces.nb201 import NetworkConfig

NODES = tuple(range(2, 2 + STEPS))
CONCAT = NODES
# Every (node, input) slot a cell has, for the fixed-length encodings.
_SLOTS = tuple((node, source) for node in NODES for source in range(node))
_PAIRS = {node: [f"{a},{b}" for a, b in itertools.combinations(range(node), 2)] for node in NODES}


def _cells(arch: Genotype) -> dict[str, list[tuple[tuple[str, int], tuple[str, int]]]]:
    """Per cell, the two edges of each node."""
    return {cell: [tuple(getattr(arch, cell)[k:k + 2]) for k in range(0, 2 * STEPS, 2)] for cell in CELLS}


def _genotype(cells: dict[str, list]) -> Genotype:
    return Genotype(normal=[e for node in cells["normal"] for e in node], normal_concat=CONCAT,
                    reduce=[e for node in cells["reduce"] for e in node], reduce_concat=CONCAT)


def _other(choices: tuple | list | range, current: object, rng: np.random.Generator) -> object:
    options = [c for c in choices if c != current]
    return options[int(rng.integers(len(options)))]


class DartsSpace:
    """Stateless; one instance serves every search."""

    name = "darts"

    def sample(self, rng: np.random.Generator) -> Genotype:
        cells = {}
        for cell in CELLS:
            nodes = []
            for node in NODES:
                a, b = sorted(int(i) for i in rng.choice(node, size=2, replace=False))
                ops = rng.integers(len(OPS), size=2)
                nodes.append(((OPS[ops[0]], a), (OPS[ops[1]], b)))
            cells[cell] = nodes
        return _genotype(cells)

    def mutate(self, arch: Genotype, rng: np.random.Generator) -> Genotype:
        """One edge of one cell changes its op or, half the time where it can, its input (NASLib's DARTS
        mutation)."""
        cells = _cells(arch)
        cell = CELLS[int(rng.integers(len(CELLS)))]
        k = int(rng.integers(2 * STEPS))
        node, side = k // 2, k % 2
        edges = list(cells[cell][node])
        op, source = edges[side]
        sibling = edges[1 - side][1]
        if node > 0 and rng.random() < 0.5:  # node 2 reads both cell inputs: its inputs cannot change
            edges[side] = (op, int(_other([i for i in range(node + 2) if i != sibling], source, rng)))
        else:
            edges[side] = (str(_other(OPS, op, rng)), source)
        cells[cell] = [*cells[cell][:node], tuple(edges), *cells[cell][node + 1:]]
        return _genotype(cells)

    def neighbors(self, arch: Genotype) -> list[Genotype]:
        """Every architecture one op or one input change away, in a fixed order."""
        out: dict[Genotype, None] = {}
        cells = _cells(arch)
        for cell, node in itertools.product(CELLS, range(STEPS)):
            edges = cells[cell][node]
            for side in (0, 1):
                op, source = edges[side]
                sibling = edges[1 - side][1]
                changes = [(o, source) for o in OPS if o != op]
                changes += [(op, i) for i in range(node + 2) if i not in (source, sibling)]
                for change in changes:
                    new = list(edges)
                    new[side] = change
                    out[_genotype({**cells, cell: [*cells[cell][:node], tuple(new), *cells[cell][node + 1:]]})] = None
        out.pop(arch, None)
        return list(out)

    def is_valid(self, arch: object) -> bool:
        """Re-checks the invariants, since a value can bypass the constructor (unpickling, ``object.__setattr__``)."""
        if not isinstance(arch, Genotype):
            return False
        try:
            again = Genotype(arch.normal, arch.normal_concat, arch.reduce, arch.reduce_concat)
        except (ValueError, TypeError):
            return False
        return again == arch and all(isinstance(getattr(arch, f), tuple) for f in again.__dataclass_fields__)

    def encode(self, arch: Genotype) -> str:
        return encode(arch)

    def decode(self, text: str) -> Genotype:
        return decode(text)

    def features(self, arch: Genotype) -> np.ndarray:
        """Per cell, per (node, input) slot, a one-hot of the op on that edge (zeros where there is none): 2 * 14 * 8
        features, the same for both orders of a node's edges."""
        out = np.zeros((len(CELLS), len(_SLOTS), len(PRIMITIVES)), dtype=np.float32)
        for c, cell in enumerate(CELLS):
            for k, (op, source) in enumerate(getattr(arch, cell)):
                out[c, _SLOTS.index((2 + k // 2, source)), PRIMITIVES.index(op)] = 1.0
        return out.ravel()

    def path_features(self, arch: Genotype, buckets: int = 512) -> np.ndarray:
        """BANANAS's path encoding (White et al. 2021): every path from a cell input to the output (through the
        concatenated nodes), as its sequence of ops, switches on one feature. There are up to 2 * 2 * 7**4 such
        sequences per cell, so they are hashed into ``buckets`` features (a stable hash: CRC-32)."""
        features = np.zeros(buckets, dtype=np.float32)
        for cell in CELLS:
            edges = getattr(arch, cell)
            paths: list[list[tuple[str, ...]]] = [[(f"{cell}:c_k-2",)], [(f"{cell}:c_k-1",)]]
            for node in NODES:
                paths.append([(*seq, op) for op, source in edges[2 * (node - 2):2 * (node - 1)]
                              for seq in paths[source]])
            for node in getattr(arch, f"{cell}_concat"):
                for sequence in paths[node]:
                    features[zlib.crc32("/".join(sequence).encode()) % buckets] = 1.0
        return features

    # --- NEAT's view (nas.strategies.neat): genes (cell, node, input) -> op ---
    # The nodes are fixed, so complexification is by depth: the minimal cell wires every node to the two cell
    # inputs, add-connection wires a node to an intermediate node, and a node uses its two deepest genes.
    def minimal_genes(self, rng: np.random.Generator) -> dict:
        return {(cell, node, source): OPS[int(rng.integers(len(OPS)))]
                for cell in CELLS for node in NODES for source in (0, 1)}

    def grow(self, genes: dict, rng: np.random.Generator) -> dict:
        """Add-connection: a node gains an input from an intermediate node; unchanged when every one is wired."""
        free = [(cell, node, source) for cell in CELLS for node in NODES for source in range(2, node)
                if (cell, node, source) not in genes]
        if not free:
            return dict(genes)
        return {**genes, free[int(rng.integers(len(free)))]: OPS[int(rng.integers(len(OPS)))]}

    def mutate_gene(self, key: tuple, value: str, rng: np.random.Generator) -> str:
        return str(_other(OPS, value, rng))

    def from_genes(self, genes: dict) -> Genotype:
        cells: dict[str, list] = {}
        for cell in CELLS:
            cells[cell] = []
            for node in NODES:
                sources = sorted((s for c, n, s in genes if c == cell and n == node), reverse=True)[:2]
                cells[cell].append(tuple((genes[(cell, node, s)], s) for s in sorted(sources)))
        return _genotype(cells)

    # --- Optuna define-by-run: per cell and node, the pair of inputs (node 2 has one) and the op of each edge ---
    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        out: dict[str, optuna.distributions.BaseDistribution] = {}
        for cell, node in itertools.product(CELLS, NODES):
            if len(_PAIRS[node]) > 1:
                out[f"{cell}_{node}_inputs"] = optuna.distributions.CategoricalDistribution(_PAIRS[node])
            for side in (0, 1):
                out[f"{cell}_{node}_op{side}"] = optuna.distributions.CategoricalDistribution(OPS)
        return out

    def active(self, params: dict) -> list[str]:
        """Every decision is always made."""
        return list(self.distributions())

    def suggest(self, trial: optuna.Trial) -> Genotype:
        return self.from_params({name: trial.suggest_categorical(name, dist.choices)
                                 for name, dist in self.distributions().items()})

    def to_params(self, arch: Genotype) -> dict:
        params = {}
        cells = _cells(arch)
        for cell, node in itertools.product(CELLS, NODES):
            a, b = cells[cell][node - 2]
            if len(_PAIRS[node]) > 1:
                params[f"{cell}_{node}_inputs"] = f"{a[1]},{b[1]}"
            params[f"{cell}_{node}_op0"], params[f"{cell}_{node}_op1"] = a[0], b[0]
        return params

    def from_params(self, params: dict) -> Genotype:
        cells = {}
        for cell in CELLS:
            cells[cell] = []
            for node in NODES:
                a, b = (int(i) for i in params.get(f"{cell}_{node}_inputs", "0,1").split(","))
                cells[cell].append(((params[f"{cell}_{node}_op0"], a), (params[f"{cell}_{node}_op1"], b)))
        return _genotype(cells)

    def build(self, arch: Genotype, config: NetworkConfig) -> nn.Module:
        from nas.spaces.darts.network import DartsNetwork

        return DartsNetwork(arch, config, auxiliary=config.auxiliary)
