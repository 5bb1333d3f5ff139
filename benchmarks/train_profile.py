"""Where a training step's time goes: ``torch.profiler`` over the real step of a recipe.

    python benchmarks/train_profile.py [CONFIG ...] [--batches 12] [--tag TAG]

(default configs: cpu-vgg-s and seed-shallow, the two small networks whose training leaves the
CPU idle). Each config runs ``train_one_epoch`` (augmentation, forward, loss, backward,
optimizer) on random images at the precision ``fercnn train`` picks on this host, two batches
of warm-up and then ``--batches`` under the profiler. Operators are summed by self CPU time
into groups (convolutions, batch norm, elementwise and activations, pooling, the optimizer,
augmentation, layout copies, the rest), with the top operators listed, so a speed change can
aim at the largest group. Results go to benchmarks/results/train_profile[-TAG].{json,md}.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from host import cpu_description, write_results
from torch.profiler import ProfilerActivity, profile

from fercnn.models import create_model
from fercnn.training.allocator import keep_freed_memory
from fercnn.training.config import load_config
from fercnn.training.device import use_bf16
from fercnn.training.distributed import Ranks
from fercnn.training.loop import train_one_epoch
from fercnn.training.optim import make_optimizer
from fercnn.training.tensors import TrainingSet

ROOT = Path(__file__).resolve().parent.parent
GROUPS = (  # (group, substrings of operator names), first match wins
    ("convolution", ("convolution", "conv2d", "mkldnn_conv")),
    ("batch norm", ("batch_norm",)),
    ("matmul (dense head)", ("addmm", "mm", "linear")),
    ("pooling", ("pool",)),
    ("optimizer", ("sgd", "foreach", "_fused", "lerp")),
    ("augmentation", ("grid_sample", "affine_grid", "bernoulli", "uniform", "normal",
                      "randperm", "index", "flip")),
    ("layout copies", ("copy_", "contiguous", "to_dense", "to_mkldnn", "clone")),
    ("elementwise and activations", ("relu", "threshold", "mul", "add", "div", "sub",
                                     "where", "clamp", "dropout", "softmax", "cross_entropy",
                                     "nll", "sum", "mean", "fill", "zero")),
)


def group_of(name: str) -> str:
    lowered = name.lower()
    for group, keys in GROUPS:
        if any(key in lowered for key in keys):
            return group
    return "other"


def profile_config(name: str, batches: int) -> dict:
    """Images/s and the self-CPU time of each operator group over ``batches`` steps."""
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    bf16 = use_bf16("auto", torch.device("cpu"))
    torch.manual_seed(0)
    model = create_model(config.model).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)

    def data(n: int) -> TrainingSet:
        return TrainingSet(torch.randint(0, 256, (n, 1, 48, 48), dtype=torch.uint8),
                           torch.randint(0, 7, (n,)))

    def run(n: int) -> None:
        train_one_epoch(model, data(n), config, optimizer, None, None,
                        torch.Generator().manual_seed(0), bf16, Ranks(), desc="")

    run(2 * config.batch_size)
    n = batches * config.batch_size
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        run(n)
        seconds = time.perf_counter() - start
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    groups: dict[str, float] = {}
    for e in events:
        groups[group_of(e.key)] = groups.get(group_of(e.key), 0.0) + e.self_cpu_time_total
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    return {"config": name, "model": config.model, "precision": "bf16" if bf16 else "fp32",
            "batch_size": config.batch_size, "images_per_s_profiled": round(n / seconds),
            "groups": {g: round(t / total, 3) for g, t in
                       sorted(groups.items(), key=lambda item: -item[1])},
            "top_operators": [{"name": e.key, "share": round(e.self_cpu_time_total / total, 3),
                               "calls": e.count} for e in top]}


def markdown(result: dict) -> list[str]:
    lines = [f"Training-step profile on {result['cpu']}, torch {torch.__version__}, "
             f"{result['threads']} threads. Shares of self CPU time under torch.profiler "
             "(the profiler itself slows small operators, so images/s here is below "
             "train_speed.py's).", ""]
    for row in result["rows"]:
        lines += [f"**{row['config']}** ({row['model']}, {row['precision']}, batch "
                  f"{row['batch_size']}, {row['images_per_s_profiled']} images/s profiled)", "",
                  "| group | share |", "| --- | ---: |"]
        lines += [f"| {g} | {share:.0%} |" for g, share in row["groups"].items()]
        lines += ["", "| top operator | share | calls |", "| --- | ---: | ---: |"]
        lines += [f"| `{op['name']}` | {op['share']:.1%} | {op['calls']} |"
                  for op in row["top_operators"]]
        lines.append("")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", nargs="*", default=["cpu-vgg-s", "seed-shallow"])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--tag", help="write train_profile-TAG.{json,md} (the host, say)")
    args = parser.parse_args()
    keep_freed_memory()
    rows = [profile_config(name, args.batches) for name in args.configs]
    result = {"cpu": cpu_description(), "threads": torch.get_num_threads(), "rows": rows}
    lines = markdown(result)
    write_results("train_profile", args.tag, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
