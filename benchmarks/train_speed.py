"""Training speed on this machine against its own matmul ceiling, bf16 and fp32.

    python benchmarks/train_speed.py [--seconds 8] [--compile seed-shallow cpu-budget]
                                     [--keras-python /tmp/tf/bin/python]

For each seed model and the CPU-budget recipe, the real training step (``train_one_epoch``:
batched augmentation, autocast, channels_last, backward, optimizer step) runs on random images
for about ``--seconds`` after a warm-up; images/s becomes achieved FLOP/s with the usual
convention of 6 FLOP per multiply-accumulate per training image (forward 2, backward 4). The
ceiling is a 4096x4096 bf16 (and fp32) matmul, run as ``torch.mm`` and as a oneDNN 1x1
convolution, timed in the same run before and after the rows: the best of all. Training runs
with ``keep_freed_memory`` as ``fercnn train`` does. ``--compile CONFIG...`` adds torch.compile
rows for those configs. The optimizer-step section times one step of each model's optimizer as
a for-loop, foreach and fused.
``--keras-python`` runs ``keras_baseline.py`` in an interpreter with TensorFlow and compares
the notebook's own framework with fercnn on the shallow and deep models, measured in this run
(Keras's batches timed inside ``fit``: whole calls include a stall of about 2 s at their end).
Results go to benchmarks/results/train_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import torch
from host import cpu_description

from fercnn.models import count_macs, create_model
from fercnn.training.allocator import keep_freed_memory
from fercnn.training.config import TrainConfig, load_config
from fercnn.training.distributed import Ranks
from fercnn.training.loop import train_one_epoch
from fercnn.training.optim import make_optimizer
from fercnn.training.tensors import TrainingSet

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CONFIGS = ("seed-shallow", "seed-improved", "seed-deep", "cpu-budget")


def matmul_tflops(dtype: torch.dtype, n: int = 4096, repeats: int = 10) -> dict:
    """TFLOP/s of one n x n x n product, run two ways: ``torch.mm`` (MKL for fp32, which takes
    a half-speed path on AMD CPUs) and as a 1x1 convolution over n pixels (oneDNN, the library
    behind the training convolutions). The ceiling is the faster of the two."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    pixels = a.view(1, n, n // 64, 64).contiguous(memory_format=torch.channels_last)
    kernel = b.view(n, n, 1, 1).contiguous(memory_format=torch.channels_last)
    speeds = {}
    for name, product in (("mm", lambda: a @ b),
                          ("conv1x1", lambda: torch.nn.functional.conv2d(pixels, kernel))):
        product()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            best = min(best, time.perf_counter() - start)
        speeds[name] = 2 * n**3 / best / 1e12
    return speeds


def images_per_second(config: TrainConfig, bf16: bool, seconds: float, compile_model: bool
                      ) -> float:
    torch.manual_seed(0)
    model = create_model(config.model).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    trained = torch.compile(model) if compile_model else model

    def run(n: int) -> float:
        data = TrainingSet(torch.randint(0, 256, (n, 1, 48, 48), dtype=torch.uint8),
                           torch.randint(0, 7, (n,)))
        start = time.perf_counter()
        train_one_epoch(trained, data, config, optimizer, None, None,
                        torch.Generator().manual_seed(0), bf16, Ranks(), desc="")
        return n / (time.perf_counter() - start)

    run(2 * config.batch_size)  # warm-up (and compilation)
    probe = run(2 * config.batch_size)
    batches = max(2, round(probe * seconds / config.batch_size))
    return run(batches * config.batch_size)


def optimizer_step_ms(config: TrainConfig) -> dict:
    model = create_model(config.model)
    for p in model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    result = {}
    for mode in ("for-loop", "foreach", "fused"):
        optimizer = make_optimizer(config, model, implementation=mode)
        for _ in range(3):
            optimizer.step()
        start = time.perf_counter()
        for _ in range(20):
            optimizer.step()
        result[mode] = round((time.perf_counter() - start) / 20 * 1000, 2)
    return result


def keras_images_per_second(python: str, seconds: float) -> dict:
    """The Keras baseline, run by another interpreter (TensorFlow is not a fercnn dependency)."""
    done = subprocess.run([python, str(ROOT / "benchmarks" / "keras_baseline.py"),
                           "--seconds", str(seconds)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per row")
    parser.add_argument("--compile", nargs="*", metavar="CONFIG", default=[],
                        help="add torch.compile rows for these configs (compiling takes "
                             "minutes per model on 2 cores)")
    parser.add_argument("--keras-python", metavar="PYTHON",
                        help="an interpreter with TensorFlow: adds the Keras baseline")
    parser.add_argument("--precisions", nargs="+", choices=("bf16", "fp32"),
                        default=["bf16", "fp32"], help="fp32 alone where the CPU has no bf16 "
                        "instructions: emulated, a 4096-wide bf16 matmul takes over a minute")
    parser.add_argument("--tag", help="write train_speed-TAG.{json,md}, keeping the main "
                        "results (another kind of CPU, say)")
    args = parser.parse_args()
    stem = "train_speed" + (f"-{args.tag}" if args.tag else "")
    configs = {name: load_config(ROOT / "configs" / f"{name}.yaml") for name in CONFIGS}
    keep_freed_memory()  # as ``fercnn train`` does
    dtypes = {p: {"bf16": torch.bfloat16, "fp32": torch.float32}[p] for p in args.precisions}
    kernels = {p: matmul_tflops(dtype) for p, dtype in dtypes.items()}
    ceiling = {k: max(v.values()) for k, v in kernels.items()}
    rows = []
    for name, config in configs.items():
        macs = count_macs(create_model(config.model))
        variants = [(p, False) for p in args.precisions] + (
            [("bf16", True)] if name in args.compile and "bf16" in dtypes else [])
        for precision, compiled in variants:
            speed = images_per_second(config, precision == "bf16", args.seconds, compiled)
            tflops = speed * 6 * macs / 1e12
            rows.append({"config": name, "model": config.model, "batch": config.batch_size,
                         "precision": precision, "compiled": compiled,
                         "mmac_per_image": round(macs / 1e6, 1),
                         "images_per_s": round(speed, 1), "tflops": round(tflops, 3)})
            print(rows[-1], flush=True)
    keras = keras_images_per_second(args.keras_python, args.seconds) if args.keras_python \
        else None
    if keras:
        print(keras, flush=True)
    steps = {name: optimizer_step_ms(config) for name, config in configs.items()}
    print(steps)
    for precision, dtype in dtypes.items():
        after = matmul_tflops(dtype)
        kernels[precision] = {k: round(max(v, after[k]), 3) for k, v in kernels[precision].items()}
    ceiling = {k: max(v.values()) for k, v in kernels.items()}
    for row in rows:  # against the best ceiling of the run
        row["fraction_of_ceiling"] = round(row["tflops"] / ceiling[row["precision"]], 3)
        if "bf16" in ceiling:
            row["fraction_of_bf16_ceiling"] = round(row["tflops"] / ceiling["bf16"], 3)
    result = {"machine": platform.processor() or platform.machine(), "cpu": cpu_description(),
              "threads": torch.get_num_threads(), "torch": torch.__version__,
              "matmul_ceiling_tflops": ceiling,
              "matmul_tflops_by_kernel": kernels, "rows": rows, "optimizer_step_ms": steps,
              "keras": keras}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    measured = ", ".join(f"{ceiling[p]} TFLOP/s {p}" for p in dtypes)
    by_kernel = "; ".join(f"{p}: {kernels[p]['mm']} and {kernels[p]['conv1x1']}" for p in dtypes)
    lines = [f"Training speed on {result['cpu']}, {result['threads']} threads, torch "
             f"{torch.__version__}. Ceiling: 4096x4096 matmul, {measured}, the faster of "
             f"torch.mm and the same product as a oneDNN 1x1 convolution ({by_kernel}), "
             "measured in this run. FLOP = 6 x MACs per training image.", "",
             "| config | model | precision | MMAC/image | images/s | TFLOP/s | "
             "of own ceiling | of bf16 ceiling |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        label = r["precision"] + (" + compile" if r["compiled"] else "")
        lines.append(f"| {r['config']} | {r['model']} | {label} | {r['mmac_per_image']} | "
                     f"{r['images_per_s']:.0f} | {r['tflops']:.3f} | "
                     f"{r['fraction_of_ceiling']:.0%} | "
                     + (f"{r['fraction_of_bf16_ceiling']:.0%} |" if "bf16" in ceiling
                        else "not measured |"))
    lines += ["", "Optimizer step (ms), the model's own optimizer:", "",
              "| config | for-loop | foreach | fused |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {s['for-loop']} | {s['foreach']} | {s['fused']} |"
              for name, s in steps.items()]
    if keras:
        lines += keras_table(keras, rows)
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def keras_table(keras: dict, rows: list[dict]) -> list[str]:
    ours = {(r["model"], r["precision"]): r["images_per_s"] for r in rows if not r["compiled"]}
    lines = ["", f"Against the notebook's framework, Keras {keras['keras']} on TensorFlow "
             f"{keras['tensorflow']} (in-memory data, batch 64, its batches timed inside `fit`, "
             "the median of three runs; measured in this run):", "",
             "| model | precision | fercnn images/s | Keras images/s | fercnn / Keras |",
             "| --- | --- | ---: | ---: | ---: |"]
    for k in keras["rows"]:
        mine = ours[(k["model"], k["precision"])]
        lines.append(f"| {k['model']} | {k['precision']} | {mine:.0f} | "
                     f"{k['images_per_s']:.0f} | {mine / k['images_per_s']:.2f}x |")
    return lines


if __name__ == "__main__":
    main()
