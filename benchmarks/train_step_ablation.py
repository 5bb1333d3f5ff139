"""What the two memory-side changes to the training step are worth, measured in one run.

    python benchmarks/train_step_ablation.py [--seconds 3] [--repeats 3]

Three variants of the real training step (``train_speed.images_per_second``), each in a fresh
process so the C library's allocator starts clean:

- ``before``: ``torch.nn.Dropout`` and glibc's default malloc (freed large blocks go back to
  the kernel, so every step page-faults its activations back in);
- ``+ keep memory``: ``fercnn.allocator.keep_freed_memory()``, as ``fercnn train`` calls it;
- ``+ fast dropout``: also fercnn's ``Dropout`` (the models' default).

Variants are interleaved and each cell is the median of ``--repeats`` runs. Results go to
benchmarks/results/train_step_ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = ("seed-shallow", "seed-improved", "cpu-budget")
VARIANTS = ("before", "+ keep memory", "+ fast dropout")


def child(config_name: str, precision: str, variant: str, seconds: float) -> None:
    """Runs in a fresh interpreter: set the variant up, then print images/s."""
    from torch import nn

    from fercnn.models import seed, vgg
    from fercnn.training.allocator import keep_freed_memory
    from fercnn.training.config import load_config

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train_speed import images_per_second

    if variant != "before":
        keep_freed_memory()
    if variant != "+ fast dropout":
        seed.Dropout = vgg.Dropout = nn.Dropout  # the models as they were built before
    config = load_config(ROOT / "configs" / f"{config_name}.yaml")
    print(images_per_second(config, precision == "bf16", seconds, compile_model=False))


def measure(config: str, precision: str, variant: str, seconds: float) -> float:
    done = subprocess.run([sys.executable, __file__, "--child", config, precision, variant,
                           "--seconds", str(seconds)], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (median kept)")
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "PRECISION", "VARIANT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.seconds)
        return
    runs: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(args.repeats):
        for config in CONFIGS:
            for precision in ("bf16", "fp32"):
                for variant in VARIANTS:
                    speed = measure(config, precision, variant, args.seconds)
                    runs.setdefault((config, precision, variant), []).append(speed)
                    print(config, precision, variant, round(speed), flush=True)
    rows = [{"config": c, "precision": p, "variant": v, "runs": [round(s, 1) for s in speeds],
             "images_per_s": round(statistics.median(speeds), 1)}
            for (c, p, v), speeds in runs.items()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train_step_ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
    median = {(r["config"], r["precision"], r["variant"]): r["images_per_s"] for r in rows}
    lines = ["Training images/s, median of interleaved runs in fresh processes (this run).", "",
             "| config | precision | " + " | ".join(VARIANTS) + " | speed-up |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for config in CONFIGS:
        for precision in ("bf16", "fp32"):
            speeds = [median[config, precision, v] for v in VARIANTS]
            lines.append(f"| {config} | {precision} | "
                         + " | ".join(f"{s:.0f}" for s in speeds)
                         + f" | {speeds[-1] / speeds[0]:.2f}x |")
    (RESULTS / "train_step_ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
