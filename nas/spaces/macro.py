"""The multi-branch macro search space (Elsken, Metzen & Hutter, "Neural Architecture Search: A Survey", JMLR 2019,
section 2 and Fig. 2).

A chain-structured network generalised to multiple branches: up to ``max_layers`` layers, each with an op and the
hyperparameters that op has (kernel size, width, stride), reading the previous layer's output and, optionally,
skip connections from any earlier output (the stem's is 0), merged by sum (residual, projected by a 1x1
convolution where shapes differ) or by concatenation (dense). A chain is the special case with no skips.

An architecture is an immutable ``MacroArch`` with a canonical string that round-trips::

    >>> arch = decode("conv:k3:w2:s1 | max_pool:k3:s2 | sep_conv:k5:w4:s1:sum(0,1)")
    >>> encode(arch)
    'conv:k3:w2:s1 | max_pool:k3:s2 | sep_conv:k5:w4:s1:sum(0,1)'

Widths are multiples of the network's base channel count (``NetworkConfig.channels``), so the architecture a search
finds with narrow networks retrains wider unchanged.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
import optuna
import torch
from torch import nn

from nas.spaces.nb201 import NetworkConfig
from nas.spaces.ops import ReLUConvBN

LAYER_OPS: tuple[str, ...] = ("conv", "sep_conv", "dil_conv", "max_pool", "avg_pool", "identity")
CONV_OPS = ("conv", "sep_conv", "dil_conv")
KERNELS = (3, 5)
WIDTHS = (1, 2, 4)
STRIDES = (1, 2)
MERGES = ("sum", "concat")


@dataclass(frozen=True, order=True)
class Layer:
    """One layer. Fields an op does not have are None (identity has no kernel or stride; pools keep their input's
    width), and ``merge`` is None exactly when there are no skips. Its repr is valid Python."""

    op: str
    kernel: int | None = None
    width: int | None = None
    stride: int | None = None
    skips: tuple[int, ...] = ()
    merge: str | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.op not in LAYER_OPS:
            problems.append(f"op must be one of {list(LAYER_OPS)}")
        if (self.kernel is None) != (self.op == "identity") or self.kernel not in (None, *KERNELS):
            problems.append(f"kernel must be one of {list(KERNELS)} (None for identity)")
        if (self.width is None) == (self.op in CONV_OPS) or self.width not in (None, *WIDTHS):
            problems.append(f"width must be one of {list(WIDTHS)} for convolutions, None otherwise")
        if (self.stride is None) != (self.op == "identity") or self.stride not in (None, *STRIDES):
            problems.append(f"stride must be one of {list(STRIDES)} (None for identity)")
        if (self.merge is None) != (not self.skips) or self.merge not in (None, *MERGES):
            problems.append(f"merge must be one of {list(MERGES)} when there are skips, None otherwise")
        if list(self.skips) != sorted(set(self.skips)) or any(s < 0 for s in self.skips):
            problems.append("skips must be distinct sources in increasing order")
        if problems:
            raise ValueError(f"bad layer {self!r}: " + "; ".join(problems))


@dataclass(frozen=True, order=True)
class MacroArch:
    """Layers in order; layer ``i`` (1-based) reads output ``i - 1`` plus its skips, which come from outputs
    ``0 .. i - 2`` (output 0 is the stem). Its repr is valid Python."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("MacroArch needs at least one layer")
        for i, layer in enumerate(self.layers, start=1):
            if any(s > i - 2 for s in layer.skips):
                raise ValueError(f"layer {i} may skip only from outputs 0..{i - 2}, got {layer.skips}")

    def __str__(self) -> str:
        return encode(self)


def encode(arch: MacroArch) -> str:
    tokens = []
    for layer in arch.layers:
        parts = [layer.op]
        parts += [f"k{layer.kernel}"] if layer.kernel else []
        parts += [f"w{layer.width}"] if layer.width else []
        parts += [f"s{layer.stride}"] if layer.stride else []
        parts += [f"{layer.merge}({','.join(map(str, layer.skips))})"] if layer.skips else []
        tokens.append(":".join(parts))
    return " | ".join(tokens)


_SKIPS = re.compile(r"^(sum|concat)\(([\d,]+)\)$")


def decode(text: str) -> MacroArch:
    """Parse the canonical string; raises ValueError naming what is wrong."""
    layers = []
    for token in text.split("|"):
        op, *parts = token.strip().split(":")
        fields: dict = {"op": op}
        for part in parts:
            if match := _SKIPS.match(part):
                fields["merge"], fields["skips"] = match[1], tuple(int(s) for s in match[2].split(","))
            elif part[:1] in ("k", "w", "s") and part[1:].isdigit():
                fields[{"k": "kernel", "w": "width", "s": "stride"}[part[0]]] = int(part[1:])
            else:
                raise ValueError(f"bad field {part!r} in layer {token.strip()!r} of {text!r}")
        layers.append(Layer(**fields))
    return MacroArch(tuple(layers))


_FIELD_CHOICES = {"op": LAYER_OPS, "kernel": KERNELS, "width": WIDTHS, "stride": STRIDES, "merge": MERGES}


def _random_gene(rng: np.random.Generator) -> tuple[Layer, str]:
    """A NEAT layer gene: a layer without skips, and the merge mode it uses once it has some."""
    layer = _random_layer(1, rng)
    return layer, MERGES[int(rng.integers(len(MERGES)))]


def _random_layer(index: int, rng: np.random.Generator, skip_probability: float = 0.25) -> Layer:
    op = LAYER_OPS[int(rng.integers(len(LAYER_OPS)))]
    kernel, width, stride = (int(rng.choice(c)) for c in (KERNELS, WIDTHS, STRIDES))
    skips = tuple(s for s in range(index - 1) if rng.random() < skip_probability)
    merge = MERGES[int(rng.integers(len(MERGES)))]
    return _layer(op, kernel, width, stride, skips, merge)


def _layer(op: str, kernel: int, width: int, stride: int, skips: tuple[int, ...], merge: str) -> Layer:
    """The canonical layer for a full set of decisions: the ones ``op`` does not have are dropped."""
    return Layer(op, None if op == "identity" else kernel, width if op in CONV_OPS else None,
                 None if op == "identity" else stride, skips, merge if skips else None)


class MacroSpace:
    """The space's pure functions. ``max_layers`` bounds the depth."""

    name = "macro"

    def __init__(self, max_layers: int = 6) -> None:
        if max_layers < 1:
            raise ValueError("max_layers must be >= 1")
        self.max_layers = max_layers

    # --- the decision sequence: fixed length, for Optuna, MCTS, REINFORCE and the encodings ---
    def _decisions(self) -> list[tuple[str, tuple]]:
        out: list[tuple[str, tuple]] = [("depth", tuple(range(1, self.max_layers + 1)))]
        for i in range(1, self.max_layers + 1):
            out += [(f"layer{i}_op", LAYER_OPS), (f"layer{i}_kernel", KERNELS), (f"layer{i}_width", WIDTHS),
                    (f"layer{i}_stride", STRIDES)]
            out += [(f"layer{i}_skip{s}", (False, True)) for s in range(i - 1)]
            out += [(f"layer{i}_merge", MERGES)]
        return out

    def active(self, params: dict) -> list[str]:
        """The decisions that shape the architecture ``params`` describes (others are ignored)."""
        names = ["depth"]
        for i in range(1, params["depth"] + 1):
            op = params[f"layer{i}_op"]
            names.append(f"layer{i}_op")
            names += [f"layer{i}_kernel", f"layer{i}_stride"] if op != "identity" else []
            names += [f"layer{i}_width"] if op in CONV_OPS else []
            skips = [f"layer{i}_skip{s}" for s in range(i - 1)]
            names += skips
            names += [f"layer{i}_merge"] if any(params[s] for s in skips) else []
        return names

    def distributions(self) -> dict[str, optuna.distributions.BaseDistribution]:
        return {name: optuna.distributions.CategoricalDistribution(c) for name, c in self._decisions()}

    def suggest(self, trial: optuna.Trial) -> MacroArch:
        """Define-by-run: only the decisions the architecture has are suggested (conditional hyperparameters)."""
        choices = dict(self._decisions())
        params = {"depth": trial.suggest_categorical("depth", choices["depth"])}
        for i in range(1, params["depth"] + 1):
            op = params[f"layer{i}_op"] = trial.suggest_categorical(f"layer{i}_op", LAYER_OPS)
            conditional = ([("kernel", KERNELS), ("stride", STRIDES)] if op != "identity" else []) + (
                [("width", WIDTHS)] if op in CONV_OPS else [])
            for field, values in conditional:
                params[f"layer{i}_{field}"] = trial.suggest_categorical(f"layer{i}_{field}", values)
            for s in range(i - 1):
                params[f"layer{i}_skip{s}"] = trial.suggest_categorical(f"layer{i}_skip{s}", (False, True))
            if any(params[f"layer{i}_skip{s}"] for s in range(i - 1)):
                params[f"layer{i}_merge"] = trial.suggest_categorical(f"layer{i}_merge", MERGES)
        return self.from_params(params)

    def to_params(self, arch: MacroArch) -> dict:
        """Every decision; those the architecture does not have take their first choice."""
        params = {name: choices[0] for name, choices in self._decisions()}
        params["depth"] = len(arch.layers)
        for i, layer in enumerate(arch.layers, start=1):
            params[f"layer{i}_op"] = layer.op
            for field in ("kernel", "width", "stride", "merge"):
                if getattr(layer, field) is not None:
                    params[f"layer{i}_{field}"] = getattr(layer, field)
            for s in layer.skips:
                params[f"layer{i}_skip{s}"] = True
        return params

    def from_params(self, params: dict) -> MacroArch:
        """The architecture of a (possibly partial) parameter dict: missing decisions take their first choice."""
        full = {name: params.get(name, choices[0]) for name, choices in self._decisions()}
        layers = []
        for i in range(1, full["depth"] + 1):
            skips = tuple(s for s in range(i - 1) if full[f"layer{i}_skip{s}"])
            layers.append(_layer(full[f"layer{i}_op"], full[f"layer{i}_kernel"], full[f"layer{i}_width"],
                                 full[f"layer{i}_stride"], skips, full[f"layer{i}_merge"]))
        return MacroArch(tuple(layers))

    # --- the space's functions ---
    def sample(self, rng: np.random.Generator) -> MacroArch:
        depth = int(rng.integers(1, self.max_layers + 1))
        return MacroArch(tuple(_random_layer(i, rng) for i in range(1, depth + 1)))

    def mutate(self, arch: MacroArch, rng: np.random.Generator) -> MacroArch:
        """Change exactly one decision the architecture has (a new depth, any other, adds random layers or drops the
        last ones)."""
        params = self.to_params(arch)
        active = self.active(params)
        name = active[int(rng.integers(len(active)))]
        choices = [c for c in dict(self._decisions())[name] if c != params[name]]
        params[name] = choices[int(rng.integers(len(choices)))]
        if name == "depth" and params["depth"] > len(arch.layers):
            extra = tuple(_random_layer(i, rng) for i in range(len(arch.layers) + 1, params["depth"] + 1))
            return MacroArch(arch.layers + extra)
        return self.from_params(params)

    def neighbors(self, arch: MacroArch) -> list[MacroArch]:
        """Every architecture one decision away (a deeper one gets a plain 3x3 convolution), in a fixed order."""
        params = self.to_params(arch)
        out = []
        for name in self.active(params):
            for choice in dict(self._decisions())[name]:
                if choice != params[name]:
                    out.append(self.from_params({**params, name: choice}))
        return list(dict.fromkeys(out))

    def is_valid(self, arch: object) -> bool:
        """Re-checks every invariant, since a value can bypass the constructors (unpickling, ``object.__setattr__``):
        a valid architecture is the one its canonical string decodes to."""
        if not isinstance(arch, MacroArch):
            return False
        try:
            return decode(encode(arch)) == arch and len(arch.layers) <= self.max_layers
        except (AttributeError, TypeError, ValueError):  # what encode/decode raise on a malformed value
            return False

    def encode(self, arch: MacroArch) -> str:
        return encode(arch)

    def decode(self, text: str) -> MacroArch:
        arch = decode(text)
        if len(arch.layers) > self.max_layers:
            raise ValueError(f"{text!r} has {len(arch.layers)} layers; this space allows at most {self.max_layers}")
        return arch

    def features(self, arch: MacroArch) -> np.ndarray:
        """One-hot of every decision the architecture has, zeros for those it has not (fixed length)."""
        params = self.to_params(arch)
        active = set(self.active(params))
        blocks = []
        for name, choices in self._decisions():
            block = np.zeros(len(choices), dtype=np.float32)
            if name in active:
                block[choices.index(params[name])] = 1.0
            blocks.append(block)
        return np.concatenate(blocks)

    def path_features(self, arch: MacroArch, buckets: int = 256) -> np.ndarray:
        """BANANAS's path encoding (White et al. 2021) for this space: every stem-to-head path, as its sequence of
        ops with their kernel sizes, switches on one feature. The number of possible sequences grows exponentially
        with depth, so sequences are hashed into ``buckets`` features (a stable hash: CRC-32)."""
        paths: list[list[tuple[str, ...]]] = [[()]]  # paths[i]: the op sequences from the stem to output i
        for layer in arch.layers:
            token = f"{layer.op}{layer.kernel or ''}"
            into = [seq for source in (len(paths) - 1, *layer.skips) for seq in paths[source]]
            paths.append([(*seq, token) for seq in into])
        features = np.zeros(buckets, dtype=np.float32)
        for sequence in paths[-1]:
            features[zlib.crc32("/".join(sequence).encode()) % buckets] = 1.0
        return features

    # --- NEAT's view (nas.strategies.neat): genes keyed by their historical position, see ``from_genes`` ---
    def minimal_genes(self, rng: np.random.Generator) -> dict:
        """One layer between the stem (position 0) and the head (position 1)."""
        return {("layer", Fraction(1, 2)): _random_gene(rng)}

    def grow(self, genes: dict, rng: np.random.Generator) -> dict:
        """NEAT's structural mutations: add a layer between two consecutive ones (add-node) or a skip between two
        non-consecutive ones (add-connection), each half the time; unchanged when neither is possible."""
        positions = sorted(key[1] for key in genes if key[0] == "layer")
        ends = [Fraction(0), *positions, Fraction(1)]
        skips = [("skip", a, b) for i, a in enumerate(ends[:-1]) for b in positions if b > ends[i + 1]]
        skips = [k for k in skips if k not in genes]
        if len(positions) < self.max_layers and (not skips or rng.random() < 0.5):
            i = int(rng.integers(len(ends) - 1))
            return {**genes, ("layer", (ends[i] + ends[i + 1]) / 2): _random_gene(rng)}
        if skips:
            return {**genes, skips[int(rng.integers(len(skips)))]: True}
        return dict(genes)

    def mutate_gene(self, key: tuple, value, rng: np.random.Generator):
        """A layer changes one of its hyperparameters or its merge mode; a skip is switched off or on."""
        if key[0] == "skip":
            return not value
        layer, merge = value
        fields = ["op", "merge", *(["kernel", "stride"] if layer.op != "identity" else []),
                  *(["width"] if layer.op in CONV_OPS else [])]
        field = fields[int(rng.integers(len(fields)))]
        current = {"op": layer.op, "kernel": layer.kernel or KERNELS[0], "width": layer.width or WIDTHS[0],
                   "stride": layer.stride or STRIDES[0], "merge": merge}
        choices = [c for c in _FIELD_CHOICES[field] if c != current[field]]
        current[field] = choices[int(rng.integers(len(choices)))]
        merge = current.pop("merge")
        return _layer(**current, skips=(), merge=merge), merge

    def from_genes(self, genes: dict) -> MacroArch:
        """Layers ordered by position; enabled skips between layers present become skip connections."""
        positions = sorted(key[1] for key in genes if key[0] == "layer")[: self.max_layers]
        index = {p: i for i, p in enumerate([Fraction(0), *positions])}
        layers = []
        for i, position in enumerate(positions, start=1):
            layer, merge = genes[("layer", position)]
            skips = tuple(sorted(index[k[1]] for k, on in genes.items()
                                 if k[0] == "skip" and on and k[2] == position and index.get(k[1], i) < i - 1))
            layers.append(replace(layer, skips=skips, merge=merge if skips else None))
        return MacroArch(tuple(layers))

    def build(self, arch: MacroArch, config: NetworkConfig) -> nn.Module:
        return MacroNetwork(arch, config)


class SepConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, kernel // 2, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )


class DilConv(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, 2 * (kernel // 2), dilation=2, bias=False),
            nn.BatchNorm2d(c_out),
        )


def _op(layer: Layer, c_in: int, c_out: int) -> nn.Module:
    k, s = layer.kernel, layer.stride
    if layer.op == "conv":
        return ReLUConvBN(c_in, c_out, k, s, k // 2)
    if layer.op == "sep_conv":
        return SepConv(c_in, c_out, k, s)
    if layer.op == "dil_conv":
        return DilConv(c_in, c_out, k, s)
    if layer.op == "max_pool":
        return nn.MaxPool2d(k, s, k // 2)
    if layer.op == "avg_pool":
        return nn.AvgPool2d(k, s, k // 2, count_include_pad=False)
    return nn.Identity()


class Skip(nn.Module):
    """Brings an earlier output to the resolution (and, for sum, the width) of the layer's main input."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        same = c_in == c_out and stride == 1
        self.project = nn.Identity() if same else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x)


class MacroLayer(nn.Module):
    def __init__(self, layer: Layer, main: tuple[int, int], sources: list[tuple[int, int]], base: int) -> None:
        """``main`` and ``sources`` are (channels, downsampling factor) of the outputs this layer reads."""
        super().__init__()
        c_main, r_main = main
        self.merge = layer.merge
        self.skips = nn.ModuleList(
            Skip(c, c_main if layer.merge == "sum" else c, r_main // r) for c, r in sources)
        c_in = c_main + (sum(c for c, _ in sources) if layer.merge == "concat" else 0)
        c_out = base * layer.width if layer.width else c_in
        self.op = _op(layer, c_in, c_out)
        self.out = (c_out, r_main * (layer.stride or 1))

    def forward(self, main: torch.Tensor, sources: list[torch.Tensor]) -> torch.Tensor:
        branches = [skip(x) for skip, x in zip(self.skips, sources)]
        if self.merge == "sum":
            main = main + sum(branches)
        elif self.merge == "concat":
            main = torch.cat([main, *branches], dim=1)
        return self.op(main)


class MacroNetwork(nn.Module):
    """A 3x3 conv stem, the layers, then BN-ReLU, global average pooling and a linear classifier.

    ``config.cells_per_stage`` is not used by this space.
    """

    def __init__(self, arch: MacroArch, config: NetworkConfig) -> None:
        super().__init__()
        c = config.channels
        self.stem = nn.Sequential(nn.Conv2d(config.in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        shapes = [(c, 1)]
        self.layers = nn.ModuleList()
        self.sources = [layer.skips for layer in arch.layers]
        for layer in arch.layers:
            module = MacroLayer(layer, shapes[-1], [shapes[s] for s in layer.skips], c)
            self.layers.append(module)
            shapes.append(module.out)
        width = shapes[-1][0]
        self.head = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(width, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.stem(x)]
        for layer, skips in zip(self.layers, self.sources):
            outputs.append(layer(outputs[-1], [outputs[s] for s in skips]))
        return self.classifier(self.head(outputs[-1]))
