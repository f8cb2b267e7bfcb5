"""What a network costs to run, measured on the built ``nn.Module`` before it is trained: parameters, FLOPs and
latency on the device it will run on. These are the hardware-aware objectives of a multi-objective search (Elsken et
al. 2019, "Efficient multi-objective neural architecture search via Lamarckian evolution": the cheap objectives are
known before training, so they can be used to choose whom to train). ``nas.estimation.objectives`` lists them as
plain data; this module measures them.

    >>> import torch.nn as nn
    >>> count_params(nn.Linear(10, 5)), flops(nn.Linear(10, 5), (10,))
    (55, 100)

Every function leaves the model as it found it (training mode, device, weights); ``input_shape`` is the shape of one
example, without the batch dimension, e.g. ``(3, 32, 32)``.
"""

from __future__ import annotations

import copy
import platform
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.utils.benchmark import Timer
from torch.utils.flop_counter import FlopCounterMode

from nas.errors import UserError
from nas.estimation.objectives import OBJECTIVES


def count_params(model: nn.Module) -> int:
    """Parameters of the network that is deployed: the trainable ones (``requires_grad``), each shared tensor counted
    once, without the submodules the model names in its ``training_only`` attribute. DARTS's auxiliary head is one:
    only the training loss reads it, and DARTS's ``count_parameters_in_MB`` leaves it out (DARTS_V2 at C=36 with 20
    cells: 3.35 M without it, 3.83 M with it)."""
    skip = tuple(f"{name}." for name in getattr(model, "training_only", ()))
    return sum(p.numel() for name, p in model.named_parameters() if p.requires_grad and not name.startswith(skip))


def flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass at batch size 1, in eval mode, counted by ``torch.utils.flop_counter``.

    ``FlopCounterMode`` counts 2 FLOPs per multiply-accumulate of matrix products and convolutions (``mm``, ``addmm``,
    ``bmm``, ``convolution``, attention); biases, pooling, activations, normalisation and additions are not counted,
    as in most FLOPs tables of NAS papers. NAS-Bench-201's "FLOPs" are multiply-accumulates, half this number: the
    all-``nor_conv_3x3`` cell at C=16, N=5 on 32x32x3 counts 440.2 M here, about 220 M in the benchmark.
    """
    device = device_of(model)
    with _inference(model), FlopCounterMode(display=False) as counter:
        model(_example(input_shape, 1, device))
    return int(counter.get_total_flops())


def _latency_device(device: str) -> torch.device:
    target = torch.device(device)
    if target.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"latency device {device!r}: no CUDA device here; allowed: cpu")
    return target


def device_name(device: str) -> str:
    """The hardware ``device`` names, as latencies measured on it depend on it: ``"cpu: <model>"`` (Linux's
    /proc/cpuinfo, else ``platform.processor()``), ``"cuda: <GPU name>"``, or the device itself."""
    target = _latency_device(device)
    if target.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(target)}"
    if target.type != "cpu":
        return str(target)
    try:
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
    except OSError:
        models = []
    return f"cpu: {models[0] if models else platform.processor() or platform.machine()}"


def latency_ms(model: nn.Module, input_shape: Sequence[int], device: str = "cpu", batch_size: int = 1,
               min_run_time: float = 0.2, threads: int = 1) -> float:
    """Median wall-clock milliseconds of one forward pass of ``batch_size`` examples on ``device``.

    Timed by ``torch.utils.benchmark.Timer.blocked_autorange`` (blocks of runs for at least ``min_run_time`` seconds,
    the median block taken) after a warm-up, in eval mode under ``no_grad``, on a copy of the model moved to
    ``device``. On CUDA the Timer synchronises the device around each block itself, so queued kernels are counted.

    ``threads`` is the intra-op thread count while timing (the Timer sets and restores it; ``torch.set_num_threads``
    is process-wide). The default, 1, matches the search: trials train single-threaded so that results do not depend
    on how many run at once, and a latency measured on all cores would change with the trials running beside it. A
    deployment target that runs on several cores is a setting: pass its thread count (and run one trial at a time).
    Trials running at once still share caches and memory bandwidth, so latencies from a parallel search are noisier.

    Args:
        model: the network; left untouched (the copy is timed).
        input_shape: shape of one example, e.g. ``(3, 32, 32)``.
        device: ``"cpu"`` or ``"cuda"`` (``"cuda:1"``...).
        batch_size: examples per forward pass.
        min_run_time: seconds of timed runs, after the warm-up.
        threads: intra-op threads while timing.

    Returns:
        The median milliseconds per forward pass.
    """
    target = _latency_device(device)
    net = copy.deepcopy(model).to(target)
    x = _example(input_shape, batch_size, target)
    timer = Timer(stmt="net(x)", globals={"net": net, "x": x}, num_threads=threads)
    with _inference(net):
        timer.timeit(10)  # warm-up (lazy initialisation, allocator, cuDNN's choice of kernels) at the same threads
        measurement = timer.blocked_autorange(min_run_time=min_run_time)
    return measurement.median * 1e3


def measure(model: nn.Module, names: Iterable[str], input_shape: Sequence[int], device: str = "cpu",
            batch_size: int = 1, threads: int = 1, min_run_time: float = 0.2) -> dict[str, float]:
    """The objectives among ``names`` that are known before training, measured on ``model``; those that need
    training (``val_accuracy``) are left out, so a study's whole objective list can be passed.

    Returns:
        ``{name: value}`` in the units of ``OBJECTIVES`` (params: count, params_m: millions, flops: FLOPs at batch
        size 1, mflops: millions of them, latency_ms: ms at ``batch_size``).
    """
    names = list(names)
    unknown = [name for name in names if name not in OBJECTIVES]
    if unknown:
        raise UserError(f"objective {unknown[0]!r} is unknown; allowed: {', '.join(OBJECTIVES)}")
    wanted = {name for name in names if not OBJECTIVES[name].needs_training}
    values: dict[str, float] = {}
    if wanted & {"params", "params_m"}:
        n = count_params(model)
        values |= {"params": float(n), "params_m": n / 1e6}
    if wanted & {"flops", "mflops"}:
        f = flops(model, input_shape)
        values |= {"flops": float(f), "mflops": f / 1e6}
    if "latency_ms" in wanted:
        values["latency_ms"] = latency_ms(model, input_shape, device, batch_size, min_run_time, threads)
    return {name: values[name] for name in names if name in wanted}


@contextmanager
def _inference(model: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd for the duration; the model's own mode put back after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's parameters (the CPU for a model without any)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _example(input_shape: Sequence[int], batch_size: int, device: torch.device) -> torch.Tensor:
    # A fixed input from its own generator (never the global RNG); costs do not depend on the values.
    generator = torch.Generator().manual_seed(0)
    return torch.randn((batch_size, *input_shape), generator=generator).to(device)


__all__ = ["count_params", "flops", "latency_ms", "measure"]
