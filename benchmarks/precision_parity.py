"""bf16 autocast against fp32: the shallow seed model trained both ways (same seed, same
batches) and evaluated on PrivateTest once each; they should end within half a point.

    python benchmarks/precision_parity.py [--data CSV] [--config configs/seed-shallow.yaml]

Writes benchmarks/results/precision_parity.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from fercnn.config import load_config
from fercnn.evaluate import evaluate
from fercnn.train import train

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "seed-shallow.yaml"))
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in ("bf16", "fp32"):
            config = load_config(args.config)
            config.precision = precision
            if args.data:
                config.data = args.data
            start = time.perf_counter()
            metrics = train(config, Path(tmp) / precision)
            minutes = (time.perf_counter() - start) / 60
            test = evaluate([Path(tmp) / precision / "best.pt"], data=config.data,
                            split="PrivateTest")
            rows[precision] = {"private_test": round(test["accuracy"], 4),
                               "clean_private_test": round(test["clean_accuracy"], 4),
                               "best_epoch": metrics["best_epoch"],
                               "public_test": metrics["best_val_acc"],
                               "epoch_seconds": metrics["epoch_seconds"],
                               "minutes": round(minutes, 1)}
            print(precision, rows[precision], flush=True)
    gap = round(100 * abs(rows["bf16"]["private_test"] - rows["fp32"]["private_test"]), 2)
    result = {"config": Path(args.config).name, "rows": rows, "gap_points": gap}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "precision_parity.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"bf16 autocast vs fp32, {result['config']} (checkpoint chosen on PublicTest, "
             f"PrivateTest once): gap **{gap} points**.", "",
             "| precision | best epoch | PublicTest | PrivateTest | clean PrivateTest | s/epoch |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {p} | {r['best_epoch']} | {r['public_test']:.2%} | {r['private_test']:.2%} | "
              f"{r['clean_private_test']:.2%} | {r['epoch_seconds']} |" for p, r in rows.items()]
    (out / "precision_parity.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
