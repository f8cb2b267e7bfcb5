"""The DARTS cell architecture (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019) as
an immutable value, with DARTS's own ``Genotype`` repr and its published cells.

A network stacks normal cells and reduction cells. A cell has two inputs (the outputs of the two previous cells,
nodes 0 and 1) and four intermediate nodes 2..5; node ``j`` sums two edges, each an operation applied to a distinct
earlier node, and the cell's output concatenates the nodes in ``*_concat``. ``normal[2k]`` and ``normal[2k + 1]``
are node ``k + 2``'s two edges as ``(op, input)``. The repr is DARTS's, so it pastes back as code, and so does a
genotype printed by DARTS's ``train_search.py`` (``decode`` accepts its ``range(2, 6)``)::

    >>> DARTS_V2.normal[:2]
    (('sep_conv_3x3', 0), ('sep_conv_3x3', 1))
    >>> decode(encode(DARTS_V2)) == DARTS_V2
    True

A node's two edges are a sum, so their order does not change the network; the value keeps them in input order
(DARTS's ``_parse`` lists them by strength) so that one network is one value. Printing a published genotype may
therefore swap the two edges of a node.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

# DARTS's ``PRIMITIVES``, in its order.
PRIMITIVES: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                               "dil_conv_3x3", "dil_conv_5x5")
# The ops a cell's edge can carry: 'none' is a candidate of the supernet's mixed ops, never an edge of a derived cell
# (DARTS's _parse excludes it).
OPS: tuple[str, ...] = tuple(op for op in PRIMITIVES if op != "none")
STEPS = 4  # intermediate nodes per cell
CELLS = ("normal", "reduce")

Edge = tuple[str, int]


def _edges(value: object, field: str) -> tuple[Edge, ...]:
    if not isinstance(value, list | tuple) or len(value) != 2 * STEPS:
        raise ValueError(f"Genotype.{field} needs {2 * STEPS} (op, input) pairs, two per node, got {value!r}")
    edges = []
    for k, pair in enumerate(value):
        node = 2 + k // 2
        if (not isinstance(pair, list | tuple) or len(pair) != 2 or pair[0] not in OPS
                or type(pair[1]) is not int or not 0 <= pair[1] < node):
            raise ValueError(f"Genotype.{field}[{k}] must be (op, input) with op in {list(OPS)} and input an "
                             f"earlier node 0..{node - 1} of node {node}, got {pair!r}")
        edges.append((pair[0], pair[1]))
    nodes = [sorted(edges[k:k + 2], key=lambda e: (e[1], e[0])) for k in range(0, len(edges), 2)]
    for node, (a, b) in enumerate(nodes, start=2):
        if a[1] == b[1]:
            raise ValueError(f"Genotype.{field}: node {node} takes node {a[1]} twice; its two inputs must differ")
    return tuple(edge for node in nodes for edge in node)


def _concat(value: object, field: str) -> tuple[int, ...]:
    nodes = range(2, 2 + STEPS)
    items = tuple(value) if isinstance(value, list | tuple | range) else None
    if (not items or any(type(n) is not int or n not in nodes for n in items) or list(items) != sorted(set(items))):
        raise ValueError(f"Genotype.{field} must list distinct intermediate nodes from {list(nodes)} in order, "
                         f"got {value!r}")
    return items


@dataclass(frozen=True, order=True)
class Genotype:
    """A DARTS cell pair. Lists are accepted (as DARTS writes them) and stored as tuples, so the value hashes."""

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for cell in CELLS:
            object.__setattr__(self, cell, _edges(getattr(self, cell), cell))
            object.__setattr__(self, f"{cell}_concat", _concat(getattr(self, f"{cell}_concat"), f"{cell}_concat"))

    def __repr__(self) -> str:
        return (f"Genotype(normal={list(self.normal)!r}, normal_concat={list(self.normal_concat)!r}, "
                f"reduce={list(self.reduce)!r}, reduce_concat={list(self.reduce_concat)!r})")

    __str__ = __repr__


def encode(arch: Genotype) -> str:
    return repr(arch)


def _literal(node: ast.expr, field: str) -> object:
    """A literal, or ``range(a, b)`` as DARTS's search prints the concat."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords):
        bounds = [_literal(arg, field) for arg in node.args]
        if len(bounds) != 2 or any(type(b) is not int or not 0 <= b <= 2 + STEPS for b in bounds):
            raise ValueError(f"Genotype.{field}: range needs two node numbers within 0..{2 + STEPS}, got "
                             f"{ast.unparse(node)!r}")
        return range(*bounds)
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise ValueError(f"Genotype.{field} must be a literal list, got {ast.unparse(node)!r}") from None


def decode(text: str) -> Genotype:
    """Parse ``Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])`` without evaluating
    code; raises ValueError naming what is wrong."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ValueError(f"not a Genotype(...) expression: {text!r}") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "Genotype"):
        raise ValueError(f"not a Genotype(...) expression: {text!r}")
    fields = ("normal", "normal_concat", "reduce", "reduce_concat")
    values = dict(zip(fields, (_literal(arg, name) for arg, name in zip(call.args, fields))))
    for keyword in call.keywords:
        if keyword.arg not in fields or keyword.arg in values:
            raise ValueError(f"Genotype takes {list(fields)} once each, got {keyword.arg!r} in {text!r}")
        values[keyword.arg] = _literal(keyword.value, keyword.arg)
    if len(call.args) > len(fields) or set(values) != set(fields):
        raise ValueError(f"Genotype needs {list(fields)}, got {sorted(values)} in {text!r}")
    return Genotype(**values)


# The cells DARTS published (``cnn/genotypes.py``); DARTS_V2 (second order) is the paper's Table 1 network.
DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1), ("skip_connect", 0),
            ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)], normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0), ("max_pool_3x3", 0),
            ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)], reduce_concat=[2, 3, 4, 5])
DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)], normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1), ("max_pool_3x3", 0),
            ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)], reduce_concat=[2, 3, 4, 5])
