"""Changes to the small networks' training step that were expected to be faster, measured
against the step as ``fercnn train`` runs it, in one run.

    python benchmarks/train_step_variants.py [--seconds 6] [--precision fp32] [--tag TAG]

``train_profile.py`` shows where a small network's step goes: on an AMX host, batch norm and
the elementwise layers (ReLU, pooling and their gradients) take more time than the
convolutions. Each variant changes one thing in the step (forward, loss, backward, fused SGD
step on a random batch, bf16 autocast as ``fercnn train`` uses it where the CPU has bf16, or
fp32 with ``--precision fp32``):

- ``as trained``: channels_last, batch as in the config, eager;
- ``NCHW``: the default memory format instead of channels_last;
- ``batch x2`` / ``batch /2``: larger or smaller batches (the learning rate would scale);
- ``compiled``: ``torch.compile`` of the whole model (inductor);
- ``compiled BN+ReLU``: each batch norm and its ReLU as one compiled function, so their
  forward and backward are single passes over memory;
- ``ReLU/pool swapped``: each ReLU and the max pool after it in the other order, pool then
  ReLU. Max and ReLU commute, so the function and its gradients are the same, and the ReLU
  touches a quarter of the values.

Results go to benchmarks/results/train_step_variants[-TAG].{json,md}: images/s and the ratio
to ``as trained``. Only what measures faster is worth adopting.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from host import cpu_description, write_results
from torch import nn

from fercnn.models import create_model
from fercnn.training.allocator import keep_freed_memory
from fercnn.training.config import load_config
from fercnn.training.device import use_bf16

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ("cpu-vgg-s", "seed-shallow")
VARIANTS = ("as trained", "NCHW", "batch x2", "batch /2", "compiled", "compiled BN+ReLU",
            "ReLU/pool swapped")


@torch.compile(dynamic=False)
def _bn_relu(x, weight, bias, mean, var, momentum: float, eps: float):
    return F.relu(F.batch_norm(x, mean, var, weight, bias, True, momentum, eps))


class CompiledBNReLU(nn.Module):
    """A BatchNorm2d and the ReLU after it, in training as one compiled function."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        return _bn_relu(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum,
                        bn.eps)


def fuse_bn_relu(module: nn.Module) -> int:
    """Replaces each BatchNorm2d followed by a ReLU inside a Sequential; returns how many."""
    fused = 0
    for child in module.children():
        fused += fuse_bn_relu(child)
    if isinstance(module, nn.Sequential):
        layers = list(module)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.BatchNorm2d) and isinstance(layers[i + 1], nn.ReLU):
                module[i], module[i + 1] = CompiledBNReLU(layers[i]), nn.Identity()
                fused += 1
    return fused


def swap_relu_and_pool(module: nn.Module) -> int:
    """Swaps each ReLU and the max pool beside it inside a Sequential; returns how many."""
    swapped = sum(swap_relu_and_pool(child) for child in module.children())
    if isinstance(module, nn.Sequential):
        layers, i = list(module), 0
        while i < len(layers) - 1:
            pair = {type(layers[i]), type(layers[i + 1])}
            if pair == {nn.ReLU, nn.MaxPool2d}:
                module[i], module[i + 1] = layers[i + 1], layers[i]
                swapped, i = swapped + 1, i + 2
            else:
                i += 1
    return swapped


def images_per_second(config_name: str, variant: str, seconds: float, bf16: bool
                      ) -> float | None:
    config = load_config(ROOT / "configs" / f"{config_name}.yaml")
    torch.manual_seed(0)
    model = create_model(config.model)
    layout = torch.contiguous_format if variant == "NCHW" else torch.channels_last
    model = model.to(memory_format=layout)
    if variant == "compiled BN+ReLU" and not fuse_bn_relu(model):
        return None  # no batch norm to fuse (the seed models)
    if variant == "ReLU/pool swapped" and not swap_relu_and_pool(model):
        return None
    trained = torch.compile(model) if variant == "compiled" else model
    batch = {"batch x2": 2 * config.batch_size,
             "batch /2": config.batch_size // 2}.get(variant, config.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                fused=True)
    x = torch.rand(batch, 1, 48, 48).contiguous(memory_format=layout)
    y = torch.randint(0, 7, (batch,))

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(trained(x), y, label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):  # warm-up (and compilation)
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per cell")
    parser.add_argument("--precision", choices=("auto", "fp32"), default="auto",
                        help="auto: bf16 where the CPU has it, as fercnn train picks")
    parser.add_argument("--tag", help="write train_step_variants-TAG.{json,md} (the host)")
    args = parser.parse_args()
    keep_freed_memory()
    bf16 = use_bf16(args.precision, torch.device("cpu"))
    rows = {name: {v: images_per_second(name, v, args.seconds, bf16) for v in VARIANTS}
            for name in CONFIGS}
    rows = {name: {v: None if s is None else round(s) for v, s in speeds.items()}
            for name, speeds in rows.items()}
    precision = "bf16" if bf16 else "fp32"
    result = {"cpu": cpu_description(), "torch": torch.__version__,
              "threads": torch.get_num_threads(), "precision": precision, "images_per_s": rows}
    lines = [f"Training-step variants on {result['cpu']}, torch {torch.__version__}, "
             f"{result['threads']} threads, {precision}: images/s (ratio to the step as "
             "trained), one run.", "",
             "| config | " + " | ".join(VARIANTS) + " |",
             "| --- |" + " ---: |" * len(VARIANTS)]
    for name, speeds in rows.items():
        base = speeds["as trained"]
        cells = ["n/a" if s is None else f"{s} ({s / base:.2f}x)" for s in speeds.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_results("train_step_variants", args.tag, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
