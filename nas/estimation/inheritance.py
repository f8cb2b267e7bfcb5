"""Weight inheritance by network morphisms: a child architecture starts from its parent's trained weights instead of
its initialisation, and trains for a few epochs only (Elsken et al. 2019 §4, "network morphisms").

The ideas, each from its paper:

* **Copy what is unchanged** (Real et al., "Large-Scale Evolution of Image Classifiers", ICML 2017: a child keeps
  the weights of every layer its mutation did not touch). Tensors are matched by their name in the module tree and
  their shape; a layer whose op changed starts from its initialisation. Deviation: a tensor whose shape a width
  change altered (a narrowed layer, the layer reading it) keeps the overlapping slice of the parent's, where Real et
  al. keep same-shaped weights only; the ``Transfer`` names each such tensor (not function-preserving).
* **Net2WiderNet** (Chen, Goodfellow & Shlens, "Net2Net: Accelerating Learning via Knowledge Transfer", ICLR 2016):
  a convolution widened from C to C' channels keeps its C filters and copies C' - C of them, drawn at random (with
  their BatchNorm statistics and affine parameters); the layer reading it splits each copied channel's weights
  between the copies. Deviation: Net2Net splits equally and adds noise to break the copies' symmetry, which is then
  only approximately function-preserving; here the split is random (proportions drawn per copy set and output
  channel, summing to 1), which breaks the symmetry and preserves the function exactly.
* **Kernel growth** (Wei, Wang, Rui & Chen, "Network Morphism", ICML 2016, kernel-size morphing): a 3x3 kernel grows
  to 5x5 (1x1 to 3x3) by zero padding; the padding of the layer grows with it, so its output is unchanged. A kernel
  that shrinks keeps its centre (not function-preserving: the ``Transfer`` says so).
* **Zero-initialised additions** (Elsken, Metzen & Hutter, "Simple and Efficient Architecture Search for CNNs",
  2017, and LEMONADE 2019): an op added where there was none (NB201's ``none`` edge turned into a convolution), or
  a new skip connection, starts with its last BatchNorm's scale and shift at zero (a summed branch) or with zero
  weights on the new input channels (a concatenated one), so it adds nothing until trained.
* **Inserted layers initialised to identity** (Net2DeeperNet): an appended layer's convolution is a Dirac kernel and
  its BatchNorm the identity (running statistics 0 and 1 - eps). Net2Deeper needs an idempotent activation *after*
  the new layer; this space's layers are ReLU-Conv-BN, so the inserted layer computes ReLU(x), which equals x only
  where x >= 0: it is the closest identity here, and the ``Transfer`` says it does not preserve the function. An
  appended ``identity`` layer does.

``inherit`` returns a ``Transfer`` that names what each layer got and whether the child computes exactly the
parent's function (before training, in eval mode); tests check it to 1e-5 for every morphism that claims it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.spaces.macro import CONV_OPS, MacroArch


@dataclass
class Transfer:
    """What ``inherit`` did: tensors copied unchanged, the morphisms applied, the modules left at their
    initialisation, and whether the child computes the parent's function (eval mode)."""

    copied: int = 0
    morphisms: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    preserving: bool = True

    def lose(self, why: str) -> None:
        self.fresh.append(why)
        self.preserving = False

    def __str__(self) -> str:
        parts = [f"{self.copied} tensors copied", *self.morphisms, *(f"fresh: {f}" for f in self.fresh)]
        return "; ".join(parts) + ("" if self.preserving else " (not function-preserving)")


def inherit(parent_arch: Hashable, parent: nn.Module, child_arch: Hashable, child: nn.Module,
            rng: np.random.Generator) -> Transfer:
    """Give ``child`` (built for ``child_arch``, initialised) its parent's trained weights, in place.

    Args:
        rng: draws the channels Net2Wider copies and the splits of their weights.
    """
    source = {k: v.detach() for k, v in parent.state_dict().items()}
    target = child.state_dict()
    transfer = Transfer()
    with torch.no_grad():
        if isinstance(child_arch, MacroArch):
            _macro(parent_arch, child_arch, source, target, transfer, rng)
        else:
            _cells(parent_arch, child_arch, source, target, transfer)
    child.load_state_dict(target)
    return transfer


def _cells(parent_arch: Any, child_arch: Any, source: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
           transfer: Transfer) -> None:
    """NB201: the skeleton is fixed, so tensors match by name; an edge whose op changed grows its kernel
    (``nor_conv_1x1`` to ``nor_conv_3x3``), starts at zero (an op where there was ``none``) or starts fresh."""
    changed = {k: (old, new) for k, (old, new) in enumerate(zip(parent_arch.ops, child_arch.ops)) if old != new}
    for name, tensor in target.items():
        edge = _edge_of(name)
        old = source.get(name)
        if edge in changed:
            was, now = changed[edge]
            if was == "nor_conv_1x1" and now == "nor_conv_3x3":
                tensor.copy_(_pad_kernel(old, 3) if tensor.dim() == 4 else old)
            elif was == "none" and name.endswith((".2.weight", ".2.bias")):  # ReLUConvBN's BatchNorm: at zero
                tensor.zero_()
        elif old is not None and old.shape == tensor.shape:
            tensor.copy_(old)
            transfer.copied += 1
    for k, (was, now) in changed.items():
        if (was, now) == ("nor_conv_1x1", "nor_conv_3x3"):
            transfer.morphisms.append(f"edge {k}: kernel 1->3")
        elif was == "none" and now.startswith("nor_conv"):
            transfer.morphisms.append(f"edge {k}: {now} added at zero")
        else:
            transfer.lose(f"edge {k}: {was} -> {now}")


def _edge_of(name: str) -> int | None:
    """The NB201 edge a tensor belongs to (``features.3.edges.4.1.weight`` -> 4), None outside the cells."""
    parts = name.split(".")
    return int(parts[parts.index("edges") + 1]) if "edges" in parts else None


def _macro(parent_arch: MacroArch, child_arch: MacroArch, source: dict[str, torch.Tensor],
           target: dict[str, torch.Tensor], transfer: Transfer, rng: np.random.Generator) -> None:
    done: set[str] = set()
    n_parent = len(parent_arch.layers)
    for i, new in enumerate(child_arch.layers):
        prefix = f"layers.{i}."
        old = parent_arch.layers[i] if i < n_parent else None
        if old is None:
            _identity_layer(new, prefix, target, transfer)
            done |= {n for n in target if n.startswith(prefix)}
            continue
        if old.op != new.op:
            transfer.lose(f"layer {i + 1}: {old.op} -> {new.op}")
            done |= {n for n in target if n.startswith(prefix + "op.")}
        elif (old.stride != new.stride or (old.skips and new.skips and old.merge != new.merge)
              or (new.op not in CONV_OPS and old.kernel != new.kernel)):
            transfer.lose(f"layer {i + 1}: stride, merge or pooling window changed")  # same-shaped weights copied
        for s in set(new.skips) - set(old.skips):
            _new_skip(i, new, s, prefix, target, transfer)
            done |= {n for n in target if n.startswith(f"{prefix}skips.{new.skips.index(s)}.")}
        if set(old.skips) - set(new.skips):
            transfer.lose(f"layer {i + 1} lost a skip connection")
        if old.skips != new.skips:  # skip modules are indexed by position: match them by source
            for s in set(old.skips) & set(new.skips):
                _copy_prefix(source, target, f"{prefix}skips.{old.skips.index(s)}.",
                             f"{prefix}skips.{new.skips.index(s)}.", transfer)
            done |= {n for n in target if n.startswith(prefix + "skips.")}
    if n_parent > len(child_arch.layers):
        transfer.lose(f"layers {len(child_arch.layers) + 1}..{n_parent} removed")
    sliced = []
    for name, tensor in target.items():
        old = source.get(name)
        if name in done or old is None:
            continue
        if old.shape == tensor.shape:
            tensor.copy_(old)
            transfer.copied += 1
        elif old.dim() == 4 and old.shape[:2] == tensor.shape[:2] and old.shape[-1] < tensor.shape[-1]:
            tensor.copy_(_pad_kernel(old, tensor.shape[-1]))
            transfer.morphisms.append(f"{name}: kernel {old.shape[-1]}->{tensor.shape[-1]}")
        elif old.dim() == 4 and old.shape[:2] == tensor.shape[:2] and old.shape[-1] > tensor.shape[-1]:
            tensor.copy_(_crop_kernel(old, tensor.shape[-1]))  # the inverse of kernel growth, not function-preserving
            transfer.lose(f"{name}: kernel {old.shape[-1]}->{tensor.shape[-1]}, the centre kept")
        elif old.dim() == tensor.dim():  # a width changed around it: the overlap (Net2Wider below may redo it)
            region = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, tensor.shape, strict=True))
            tensor[region] = old[region]
            sliced.append(name)
    last, widened = None, set()
    for i, (old, new) in enumerate(zip(parent_arch.layers, child_arch.layers)):
        if old.op == new.op and new.op in CONV_OPS and new.width != old.width:
            last = _net2wider(i, parent_arch, child_arch, source, target, transfer, rng, widened)
    if rest := [n for n in sliced if n not in widened and not n.startswith(("head.", "classifier."))]:
        transfer.lose(f"a width changed around {', '.join(rest)}: overlap copied")
    _head(source, target, transfer, last)


def _net2wider(i: int, parent_arch: MacroArch, child_arch: MacroArch, source: dict[str, torch.Tensor],
               target: dict[str, torch.Tensor], transfer: Transfer,
               rng: np.random.Generator, widened: set[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """Layer i's output widened: its filters (and BatchNorm) copied by a random mapping, its reader's weights split;
    the tensors it wrote are added to ``widened``. Returns the mapping and the split when the head reads the layer
    (the last one), for ``_head``."""
    layers = child_arch.layers
    readers_ok = (all(i + 1 not in layer.skips for layer in layers)
                  and (i + 1 == len(layers) or (layers[i + 1].op in CONV_OPS and not layers[i + 1].skips)))
    old_w = parent_arch.layers[i].width
    conv, bn = _conv_names(layers[i].op, f"layers.{i}.op.")
    reader = None
    if i + 1 < len(layers) and readers_ok:
        nxt = f"layers.{i + 1}.op."
        reader = nxt + ("2.weight" if layers[i + 1].op == "sep_conv" else "1.weight")
    if (old_w > layers[i].width or not readers_ok or source[conv].shape[1:] != target[conv].shape[1:]
            or (reader is not None and source[reader].shape[0] != target[reader].shape[0])):
        # narrower, its input changed too, or read by what widening cannot follow: the overlap, copied above
        transfer.lose(f"layer {i + 1} width {old_w} -> {layers[i].width}, sliced")
        return None
    c, c_new = source[conv].shape[0], target[conv].shape[0]
    mapping = np.concatenate([np.arange(c), rng.integers(c, size=c_new - c)])
    index = torch.as_tensor(mapping)
    target[conv].copy_(source[conv][index])
    for suffix in ("weight", "bias", "running_mean", "running_var"):
        target[f"{bn}.{suffix}"].copy_(source[f"{bn}.{suffix}"][index])
    widened |= {conv, *(f"{bn}.{suffix}" for suffix in ("weight", "bias", "running_mean", "running_var"))}
    split = _split(mapping, rng)  # share of each new channel in its original's outgoing weights
    transfer.morphisms.append(f"layer {i + 1}: Net2Wider {c}->{c_new} channels")
    if reader is None:
        return mapping, split  # the head reads it
    if layers[i + 1].op == "sep_conv":  # depthwise filters follow their input channel; the pointwise conv splits
        target[nxt + "1.weight"].copy_(source[nxt + "1.weight"][index])
        widened.add(nxt + "1.weight")
    target[reader].copy_(source[reader][:, index] * _split_for(split, source[reader]))
    widened.add(reader)
    return None


def _split(mapping: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per new channel, random proportions summing to 1 over the copies of each original channel."""
    raw = rng.uniform(0.25, 1.0, size=len(mapping))
    totals = np.bincount(mapping, weights=raw, minlength=mapping.max() + 1)
    return raw / totals[mapping]


def _split_for(split: np.ndarray, weight: torch.Tensor) -> torch.Tensor:
    shape = [1, len(split)] + [1] * (weight.dim() - 2)
    return torch.as_tensor(split, dtype=weight.dtype).reshape(shape)


def _head(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], transfer: Transfer,
          widened: tuple[np.ndarray, np.ndarray] | None) -> None:
    """The head (BatchNorm, classifier) reads the last layer: widened by its Net2Wider mapping, else sliced."""
    if source["classifier.weight"].shape == target["classifier.weight"].shape:
        return  # copied
    if widened is None:
        _slices("head.", source, target)
        _slices("classifier.", source, target)
        transfer.lose("the head's width changed, sliced")
        return
    mapping, split = widened
    index = torch.as_tensor(mapping)
    for suffix in ("weight", "bias", "running_mean", "running_var"):
        target[f"head.0.{suffix}"].copy_(source[f"head.0.{suffix}"][index])
    target["classifier.weight"].copy_(source["classifier.weight"][:, index] * _split_for(split, target["classifier.weight"]))
    target["classifier.bias"].copy_(source["classifier.bias"])


def _identity_layer(layer: Any, prefix: str, target: dict[str, torch.Tensor], transfer: Transfer) -> None:
    if layer.op == "identity":
        transfer.morphisms.append(f"{prefix[:-1]}: identity layer inserted")
        return
    conv, bn = _conv_names(layer.op, prefix + "op.") if layer.op in CONV_OPS else (None, None)
    if conv is not None and target[conv].shape[0] == target[conv].shape[1] and (layer.stride or 1) == 1:
        nn.init.dirac_(target[conv])
        if layer.op == "sep_conv":  # and its depthwise filters
            nn.init.dirac_(target[prefix + "op.1.weight"], groups=target[conv].shape[0])
        target[f"{bn}.weight"].fill_(1.0)
        target[f"{bn}.bias"].zero_()
        target[f"{bn}.running_mean"].zero_()
        target[f"{bn}.running_var"].fill_(1.0 - 1e-5)
    transfer.lose(f"{prefix[:-1]}: {layer.op} layer inserted (ReLU-Conv-BN: identity only where x >= 0)")


def _new_skip(i: int, layer: Any, s: int, prefix: str, target: dict[str, torch.Tensor], transfer: Transfer) -> None:
    if layer.merge == "sum":
        bn = f"{prefix}skips.{layer.skips.index(s)}.project.1"
        if f"{bn}.weight" in target:
            target[f"{bn}.weight"].zero_()
            target[f"{bn}.bias"].zero_()
            transfer.morphisms.append(f"layer {i + 1}: skip from {s} added at zero")
        else:
            transfer.lose(f"layer {i + 1}: skip from {s} added as an identity sum")
        return
    transfer.lose(f"layer {i + 1}: concatenated skip from {s} added")


def _copy_prefix(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor], old: str, new: str,
                 transfer: Transfer) -> None:
    for name, tensor in target.items():
        if name.startswith(new) and (src := source.get(old + name[len(new):])) is not None \
                and src.shape == tensor.shape:
            tensor.copy_(src)
            transfer.copied += 1


def _slices(prefix: str, source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> None:
    """The overlapping slice of every tensor under ``prefix`` whose shape changed (the module docstring's deviation)."""
    for name, tensor in target.items():
        old = source.get(name)
        if name.startswith(prefix) and old is not None and old.dim() == tensor.dim() and old.shape != tensor.shape:
            region = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, tensor.shape))
            tensor[region] = old[region]


def _conv_names(op: str, prefix: str) -> tuple[str, str]:
    """The convolution that sets a conv-type op's output channels, and its BatchNorm (macro ops: ReLU, conv(s), BN)."""
    if op == "sep_conv":
        return prefix + "2.weight", prefix + "3"
    return prefix + "1.weight", prefix + "2"


def _pad_kernel(weight: torch.Tensor, size: int) -> torch.Tensor:
    """A k x k kernel centred in a size x size one of zeros (the layer's padding grows with it)."""
    pad = (size - weight.shape[-1]) // 2
    return nn.functional.pad(weight, (pad, pad, pad, pad))


def _crop_kernel(weight: torch.Tensor, size: int) -> torch.Tensor:
    """The centre size x size of a k x k kernel (the layer's padding shrinks with it, so the centre stays aligned)."""
    cut = (weight.shape[-1] - size) // 2
    return weight[..., cut:cut + size, cut:cut + size]
