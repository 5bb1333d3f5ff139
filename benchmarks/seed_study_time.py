"""The whole seed study (shallow, improved, deep: 10 epochs each, validation every epoch, then
PrivateTest) timed end to end on this machine, with the real data.

    python benchmarks/seed_study_time.py [--data fer2013.csv.xz] [--precision fp32]

It runs ``fercnn compare`` on the three seed configs into a fresh temporary folder (so nothing
is reused) and writes the wall time, per model and in all, to
benchmarks/results/seed_study_time{,-fp32}.{json,md}.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from fercnn.training.report import compare

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = [ROOT / "configs" / f"seed-{m}.yaml" for m in ("shallow", "improved", "deep")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configs = []
        for path in CONFIGS:  # the committed configs, with the precision asked for
            text = path.read_text() + f"\nprecision: {args.precision}\n"
            (Path(tmp) / path.name).write_text(text)
            configs.append(str(Path(tmp) / path.name))
        start = time.perf_counter()
        table = compare(configs, data=args.data, out=Path(tmp) / "study")
        total = time.perf_counter() - start
        with open(Path(tmp) / "study" / "comparison.csv", newline="") as f:
            per_model = {row["model"]: {"test_acc": float(row["test_acc"]),
                                        "epoch_seconds": float(row["epoch_seconds"])}
                         for row in csv.DictReader(f)}
    suffix = "" if args.precision == "auto" else f"-{args.precision}"
    result = {"machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads(), "total_minutes": round(total / 60, 1),
              "models": per_model}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"seed_study_time{suffix}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"seed_study_time{suffix}.md").write_text(
        f"The seed study end to end on {result['threads']} threads: "
        f"**{result['total_minutes']} minutes** (3 x 10 epochs with per-epoch validation, "
        "then PrivateTest).\n\n" + table + "\n")
    print(f"seed study: {result['total_minutes']} minutes")


if __name__ == "__main__":
    main()
