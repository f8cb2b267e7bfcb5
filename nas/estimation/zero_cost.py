"""Zero-cost proxies: an architecture's score from its network at initialisation and one batch, without training.

The pruning-at-initialisation saliencies summed over a whole network (Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost
Proxies for Lightweight NAS", ICLR 2021), Mellor, Turner, Storkey & Crowley's NASWOT score ("Neural Architecture Search
without Training", ICML 2021), and the parameter/FLOP counts they are compared with. Higher is better for every one.

Each follows its reference code (``foresight/pruners/measures`` of SamsungLabs/zero-cost-nas; ``score_networks.py`` of
BayesWatch/nas-without-training): the network is in training mode (BatchNorm normalises with the batch's statistics);
``grad_norm``, ``snip``, ``grasp`` and ``synflow`` are summed over the weights of every Conv2d and Linear layer (biases
and BatchNorm excluded), with the cross-entropy loss on the batch:

- ``grad_norm``: sum over layers of the L2 norm of the weight gradient.
- ``snip`` (Lee et al. 2019): sum of |w * dL/dw|.
- ``grasp`` (Wang et al. 2020): sum of -w * (H g), H the loss Hessian, g the gradient (one Hessian-vector product).
- ``fisher`` (Theis et al. 2018): per output channel of each Conv2d/Linear, 0.5 * the batch mean of (sum over
  positions of activation * its gradient)^2, counted once per weight of that channel (the reference broadcasts the
  channel's value to its weights before summing).
- ``jacob_cov`` (Mellor et al.'s first NASWOT score, arXiv:2006.04647v1, 2020; Abdelfattah et al.'s form):
  -sum(log(v + k) + 1/(v + k)), k = 1e-5, over the eigenvalues v of the correlation matrix of the
  per-image input gradients of the summed outputs.
- ``synflow`` (Tanaka et al. 2020): sum of |w * dR/dw|, R the sum of the outputs for a single all-ones input, in double
  precision, with every parameter replaced by its absolute value and the BatchNorm layers removed (the reference scores
  a copy built without BatchNorm: ``@measure('synflow', bn=False)``). Needs no data.
- ``naswot``: log|det K|, K[i, j] = the number of ReLU units on which images i and j agree (both active or both not),
  summed over every ReLU (the kernel N_A - Hamming distance of the binary codes); -inf where K is singular (codes
  that do not tell the images apart, e.g. a tiny network whose few ReLUs are all active).
- ``params``: trainable parameters. ``flops``: of one image's forward pass, as
  ``torch.utils.flop_counter.FlopCounterMode`` counts them (a multiply-add is 2).

Differences from the reference code: ``jacob_cov`` takes the eigenvalues with ``eigvalsh`` (the matrix is symmetric;
the reference's ``eig`` can return complex noise), and is NaN where the reference's is (an input gradient constant
across the batch, e.g. an NB201 cell with no path to its output); ``naswot`` counts every ReLU the forward pass calls in
one pass under ``no_grad`` (the reference first runs a backward pass and counts the ReLUs it reached: in these networks
every ReLU called is on a path to the output, since the ``none`` op multiplies by zero and keeps the graph), and
counts each ReLU once, as the paper defines K (the reference hooks every module whose class name contains "ReLU",
so NB201's ``ReLUConvBN`` blocks count their input's signs a second time: 1365.8 against 1304.6 here for one NB201
network; what that does to the ranking is not measured).
``score`` uses the whole batch it is given; ``scores`` gives each proxy the batch size it was published with
(``BATCH_SIZES``: 64 in foresight's NAS-Bench-201 script, 128 for NASWOT). The papers' batches were CIFAR-10 images
(with foresight's training augmentation); ``nas zero-cost`` and ``benchmarks/zero_cost.py`` use ``image_batch``.

    >>> from nas.spaces import SPACES, NetworkConfig
    >>> space = SPACES["nb201"]
    >>> arch = space.sample(np.random.default_rng(0))
    >>> estimator = ZeroCostEstimator(space, NetworkConfig(8, 1), torch.zeros(2, 3, 32, 32), None, "synflow")
    >>> estimator.estimate(arch) > 0
    True
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from nas.config import ZERO_COST_PROXIES
from nas.errors import UserError
from nas.estimation import cost
from nas.spaces import NetworkConfig
from nas.training import init_model

# The batch each proxy was published with (foresight's NAS-Bench-201 script: 64; NASWOT: 128); None: needs no data.
BATCH_SIZES: dict[str, int | None] = {"grad_norm": 64, "snip": 64, "grasp": 64, "fisher": 64, "jacob_cov": 64,
                                      "synflow": None, "naswot": 128, "params": None, "flops": None}
_JACOB_K = 1e-5
_SHARED = ("grad_norm", "snip", "fisher")  # one backward pass gives all three (``_loss_saliencies``)


def _layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss_saliencies(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``grad_norm``, ``snip`` and ``fisher``: one cross-entropy backward pass serves all three."""
    per_channel: dict[nn.Module, torch.Tensor] = {}

    def on_forward(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        act = output.detach()

        def on_grad(grad: torch.Tensor) -> None:
            g_nk = (act * grad).sum(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else act * grad
            per_channel[module] = per_channel.get(module, 0) + 0.5 * g_nk.pow(2).mean(0)

        output.register_hook(on_grad)

    layers = _layers(model)
    handles = [m.register_forward_hook(on_forward) for m in layers]
    try:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        used = [m for m in layers if m.weight.grad is not None]
        return {"grad_norm": sum(float(m.weight.grad.norm()) for m in used),
                # |dL/dmask| of the reference's all-ones weight mask is |w * dL/dw|
                "snip": sum(float((m.weight * m.weight.grad).abs().sum()) for m in used),
                "fisher": sum(float(v.sum()) * m.weight[0].numel() for m, v in per_channel.items())}


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _loss_saliencies(model, x, y)["grad_norm"]


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _loss_saliencies(model, x, y)["snip"]


def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _loss_saliencies(model, x, y)["fisher"]


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    layers = _layers(model)
    weights = [m.weight for m in layers]
    g = torch.autograd.grad(F.cross_entropy(model(x), y), weights, allow_unused=True)
    g_graph = torch.autograd.grad(F.cross_entropy(model(x), y), weights, create_graph=True, allow_unused=True)
    model.zero_grad()
    z = sum((a.detach() * b).sum() for a, b in zip(g, g_graph) if a is not None and b is not None)
    z.backward()  # each weight's .grad is now H g
    with torch.no_grad():
        return sum(float((-m.weight * m.weight.grad).sum()) for m in layers if m.weight.grad is not None)


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad()
    out = model(x)
    out.backward(torch.ones_like(out))
    jacobians = x.grad.reshape(len(x), -1).double().cpu().numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(jacobians)
    if not np.all(np.isfinite(corr)):
        return float("nan")
    v = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(v + _JACOB_K) + 1.0 / (v + _JACOB_K)))


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    _remove_batchnorm(model)
    model.double()
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.abs_()
    model.zero_grad()
    model(torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)).sum().backward()
    with torch.no_grad():
        return sum(float((m.weight * m.weight.grad).abs().sum()) for m in _layers(model) if m.weight.grad is not None)


def naswot(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    n = len(x)
    kernel = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def on_relu(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        codes = (inputs[0] > 0).reshape(n, -1).float()
        # codes c: K = c c^T + (1 - c)(1 - c)^T = 2 G - s_i - s_j + units, with G = c c^T and s the row sums. G holds
        # integers below 2**24, which float32 sums exactly.
        gram, active = codes @ codes.T, codes.sum(1)
        kernel.add_((2 * gram - active[:, None] - active[None, :] + codes.shape[1]).double())

    handles = [m.register_forward_hook(on_relu) for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return float(torch.linalg.slogdet(kernel).logabsdet)


def params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(cost.count_params(model))  # as the params objective counts them


def flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(cost.flops(model, x.shape[1:]))  # as the flops objective counts them: one image, values unused


def _on_device_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    device = cost.device_of(model)
    return x.to(device), None if y is None else y.to(device)


def _remove_batchnorm(model: nn.Module) -> None:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, _BatchNorm):
                setattr(parent, name, nn.Identity())


Proxy = Callable[[nn.Module, torch.Tensor, torch.Tensor], float]
PROXIES: dict[str, Proxy] = {"grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher,
                             "jacob_cov": jacob_cov, "synflow": synflow, "naswot": naswot, "params": params,
                             "flops": flops}
assert tuple(PROXIES) == ZERO_COST_PROXIES  # the names params.yaml is checked against


def check_proxy(proxy: str) -> None:
    if proxy not in PROXIES:
        raise UserError(f"unknown zero-cost proxy {proxy!r}; allowed: {', '.join(PROXIES)}")


def score(model: nn.Module, proxy: str, x: torch.Tensor, y: torch.Tensor | None) -> float:
    """``proxy`` of ``model`` on the batch ``x`` (float images, N x C x H x W) with labels ``y`` (int64; only the
    loss-based proxies read them). ``model`` is left unchanged: the proxy runs on a copy, in training mode, on the
    model's device (the batch is moved there)."""
    check_proxy(proxy)
    copied = copy.deepcopy(model).train()
    return PROXIES[proxy](copied, *_on_device_of(model, x, y))


def scores(model: nn.Module, proxies: Sequence[str], x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
    """Each of ``proxies`` as ``score`` gives it on the first ``BATCH_SIZES[proxy]`` images of ``x`` (the batch its
    paper used; all of ``x`` if it holds fewer), computed once per pass where proxies share one: ``grad_norm``,
    ``snip`` and ``fisher`` come from the same backward pass, exactly as three separate runs would give them."""
    for proxy in proxies:
        check_proxy(proxy)
    x, y = _on_device_of(model, x, y)
    out: dict[str, float] = {}
    for proxy in proxies:
        if proxy not in out:
            n = BATCH_SIZES[proxy] or len(x)
            copied = copy.deepcopy(model).train()
            if proxy in _SHARED:
                out.update({k: v for k, v in _loss_saliencies(copied, x[:n], y[:n]).items() if k in proxies})
            else:
                out[proxy] = PROXIES[proxy](copied, x[:n], None if y is None else y[:n])
    return {proxy: out[proxy] for proxy in proxies}


class ZeroCostEstimator:
    """An architecture's ``proxy`` score at initialisation: built at ``network`` size, initialised from ``seed`` (the
    same weights for the same architecture and seed, ``nas.training.init_model``), scored on ``(x, y)``."""

    def __init__(self, space: Any, network: NetworkConfig, x: torch.Tensor, y: torch.Tensor | None, proxy: str,
                 seed: int = 0) -> None:
        check_proxy(proxy)
        self.space, self.network, self.x, self.y, self.proxy, self.seed = space, network, x, y, proxy, seed

    def estimate(self, arch: Hashable) -> float:
        model = init_model(lambda: self.space.build(arch, self.network), self.seed)
        return score(model, self.proxy, self.x, self.y)


def sample_distinct(space: Any, pool: int, rng: np.random.Generator, max_repeats: int = 10_000) -> list[Hashable]:
    """``pool`` distinct architectures in the order ``space.sample`` first draws them. ValueError when the space
    yields no new one in ``max_repeats`` draws in a row (a space smaller than ``pool``)."""
    seen: dict[Hashable, None] = {}
    repeats = 0
    while len(seen) < pool:
        arch = space.sample(rng)
        repeats = repeats + 1 if arch in seen else 0
        if repeats >= max_repeats:
            raise ValueError(f"pool {pool}: after {len(seen)} distinct architectures, {max_repeats} draws in a "
                             "row gave no new one (the space may hold fewer); use a smaller pool")
        seen[arch] = None
    return list(seen)


def best_of(archs: list[Hashable], values: list[float], k: int) -> list[Hashable]:
    """The ``k`` highest-scoring, best first; ties (and NaN scores, ranked last) keep the order of ``archs``."""
    def rank(i: int) -> tuple[bool, float]:
        return (True, 0.0) if np.isnan(values[i]) else (False, -values[i])

    order = sorted(range(len(archs)), key=rank)
    return [archs[i] for i in order[:k]]


def warm_start(space: Any, network: NetworkConfig, x: torch.Tensor, y: torch.Tensor | None, proxy: str, pool: int,
               top_k: int, seed: int = 0) -> list[Hashable]:
    """The zero-cost warm-up (Abdelfattah et al. 2021, §5): the ``top_k`` best by ``proxy`` of ``pool`` distinct random
    architectures drawn from ``np.random.default_rng(seed)``, best first, ties in draw order; each scored at
    initialisation from ``seed``. A strategy starts from them with ``nas.strategies.warmup.WarmStarted``."""
    if not 1 <= top_k <= pool:
        raise ValueError(f"top_k must be in 1..pool ({pool}), got {top_k}")
    archs = sample_distinct(space, pool, np.random.default_rng(seed))
    estimator = ZeroCostEstimator(space, network, x, y, proxy, seed)
    return best_of(archs, [estimator.estimate(a) for a in archs], top_k)


@functools.lru_cache(maxsize=2)
def _standardised(dataset: str, root: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    # Cached: parsing mnist5k's text file takes seconds, and a process asks for its batches more than once.
    from nas.data.datasets import load_raw

    raw = load_raw(dataset, root, download)
    x = raw.train_x.float() / 255.0
    mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return (x - mean) / std, raw.train_y


def image_batch(dataset: str, size: int, seed: int = 0, root: str = "data/raw",
                download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A CIFAR-shaped batch (``size`` x 3 x 32 x 32, standardised with the dataset's per-channel statistics) of real
    images drawn at random (``seed``) from ``dataset`` (``nas.data.datasets``): resized bilinearly to 32 x 32 and,
    for a grey-scale dataset (mnist5k, digits), repeated to 3 channels. The labels come with it."""
    all_x, all_y = _standardised(dataset, root, download)
    if size > len(all_y):
        raise UserError(f"dataset {dataset}: {len(all_y)} images, fewer than the batch of {size}")
    pick = torch.from_numpy(np.sort(np.random.default_rng(seed).choice(len(all_y), size, replace=False)))
    x = all_x[pick]
    if x.shape[-2:] != (32, 32):
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return x.contiguous(), all_y[pick].clone()


def read_arch_table(path: str | Path, space: Any) -> list[tuple[str, str, Hashable]]:
    """``(index, arch string, architecture)`` of every row of a table with ``index`` and ``arch`` columns (the
    NAS-Bench-201 table's format; other columns are ignored), in the table's order. UserError naming the file (and
    row) when it cannot be read, lacks a column, is empty or holds a string ``space`` cannot decode."""
    from nas.tabular.benchmark import read_csv_table

    path = Path(path)
    table = read_csv_table(path, ("index", "arch"), dtype=str, keep_default_na=False)
    rows = []
    for line, (index, text) in enumerate(zip(table["index"], table["arch"]), start=2):
        try:
            rows.append((index, text, space.decode(text)))
        except ValueError as exc:  # the space's name: a table of another space's strings fails on its first row
            raise UserError(f"{path}: row {line}: not a {getattr(space, 'name', 'space')} architecture: {exc}") from None
    if not rows:
        raise UserError(f"{path}: no rows; a table needs one architecture per row")
    return rows
