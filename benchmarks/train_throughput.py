"""Images per second of the retrain loop (``nas.training.train``) against a plain hand-written PyTorch loop: same
model, data, batch size, precision and per-epoch validation pass; CIFAR-shaped tensors (3x32x32, 10 classes).

Prints both rates and their ratio (target >= 0.95) on the CPU, and on the GPU when there is one (bf16 autocast and
channels_last there, as the retrain stage does). The data is random uint8 tensors made here: no download needed.
Usage: python benchmarks/train_throughput.py [--images 2048] [--epochs 2] [--repeats 3] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from nas.data.prepare import PreparedData, Split, normalize
from nas.spaces import SPACES, NetworkConfig
from nas.training import TrainConfig, init_model, pick_device, predict, train

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def cifar_shaped(images: int, seed: int = 0) -> PreparedData:
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        return Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g),
                     torch.randint(0, 10, (n,), generator=g))

    manifest = {"num_classes": 10, "image_shape": [3, 32, 32],
                "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}
    return PreparedData(split(images), split(images // 8), split(8), manifest)


def plain_loop(model: torch.nn.Module, data: PreparedData, config: TrainConfig) -> None:
    """What a person writes by hand: tensors on the device, shuffled slices, SGD, a validation pass per epoch."""
    device, cuda = config.device, config.device.startswith("cuda")
    memory_format = torch.channels_last if cuda else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    x = normalize(data.train.x.to(device), data.manifest).contiguous(memory_format=memory_format)
    y = data.train.y.to(device)
    val_x, val_y = normalize(data.val.x.to(device), data.manifest), data.val.y.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(y), device=device)
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        (predict(model, val_x) == val_y).float().mean().item()


def rate(run, data: PreparedData, config: TrainConfig) -> float:
    space = SPACES["nb201"]
    model = init_model(lambda: space.build(space.decode(ARCH), NetworkConfig(16, 1, 3, 10)), 0)
    if config.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    run(model, data, config)
    if config.device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(data.train.y) * config.epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    devices = ["cpu"] + (["cuda"] if pick_device() == "cuda" else [])
    for device in devices:
        images = args.images * (16 if device == "cuda" else 1)
        data = cifar_shaped(images)
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, device=device)
        ours = lambda m, d, c: train(m, d, c)  # noqa: E731
        rate(ours, data, config)  # warm-up: allocator, cuDNN autotuning, thread pools
        rate(plain_loop, data, config)
        results = {"retrain loop": [], "plain loop": []}
        for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
            results["retrain loop"].append(rate(ours, data, config))
            results["plain loop"].append(rate(plain_loop, data, config))
        ours_rate, plain_rate = (statistics.median(v) for v in results.values())
        name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
        print(f"{device} ({name}): {images} CIFAR-shaped images x {args.epochs} epochs, batch {args.batch_size}")
        print(f"  retrain loop {ours_rate:,.0f} images/s, plain loop {plain_rate:,.0f} images/s, "
              f"ratio {ours_rate / plain_rate:.3f} (target >= 0.95)")
    if devices == ["cpu"]:
        print("no GPU here: the GPU ratio was not measured")


if __name__ == "__main__":
    main()
