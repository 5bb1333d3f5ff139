"""bf16 autocast against fp32: the shallow seed model trained both ways (same seed, same
batches) and evaluated on PrivateTest once each, over several seeds; the means should end
within half a point.

    python benchmarks/precision_parity.py [--data CSV] [--config configs/seed-shallow.yaml]
                                          [--seeds 0 1 2]

One seed is not enough: the shallow model over-fits within 10 epochs and its PrivateTest figure
moves by about a point from seed to seed. Each (precision, seed) run is kept in
benchmarks/results/precision_parity.json, so seeds can be added in later runs (a seed run again
replaces its old figures); the Markdown beside it is rebuilt from all of them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from fercnn.evaluate import evaluate
from fercnn.training.config import load_config
from fercnn.training.loop import train

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PRECISIONS = ("bf16", "fp32")


def train_and_test(config_path: str, precision: str, seed: int, data: str | None,
                   tmp: Path) -> dict:
    config = load_config(config_path)
    config.precision, config.seed = precision, seed
    if data:
        config.data = data
    out = tmp / f"{precision}-{seed}"
    start = time.perf_counter()
    metrics = train(config, out)
    minutes = (time.perf_counter() - start) / 60
    test = evaluate([out / "best.pt"], data=config.data, split="PrivateTest")
    return {"precision": precision, "seed": seed, "private_test": round(test["accuracy"], 4),
            "clean_private_test": round(test["clean_accuracy"], 4),
            "best_epoch": metrics["best_epoch"], "public_test": metrics["best_val_acc"],
            "epoch_seconds": metrics["epoch_seconds"], "minutes": round(minutes, 1)}


def summary(runs: list[dict]) -> dict:
    means = {p: statistics.mean(r["private_test"] for r in runs if r["precision"] == p)
             for p in PRECISIONS if any(r["precision"] == p for r in runs)}
    paired = sorted({r["seed"] for r in runs if r["precision"] == "bf16"}
                    & {r["seed"] for r in runs if r["precision"] == "fp32"})
    gap = round(100 * abs(means["bf16"] - means["fp32"]), 2) if len(means) == 2 else None
    return {"mean_private_test": {p: round(m, 4) for p, m in means.items()},
            "paired_seeds": paired, "gap_points": gap}


def markdown(config: str, runs: list[dict], result: dict) -> str:
    means = result["mean_private_test"]
    lines = [f"bf16 autocast vs fp32, {config}, {len(result['paired_seeds'])} seed(s) each "
             "(checkpoint chosen on PublicTest, PrivateTest once): mean PrivateTest "
             + ", ".join(f"{p} {m:.2%}" for p, m in means.items())
             + (f"; gap of the means **{result['gap_points']} points**"
                if result["gap_points"] is not None else "; no pair yet")
             + " (goal: at most 0.5).", "",
             "| precision | seed | best epoch | PublicTest | PrivateTest | clean PrivateTest "
             "| s/epoch |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['precision']} | {r['seed']} | {r['best_epoch']} | {r['public_test']:.2%} | "
              f"{r['private_test']:.2%} | {r['clean_private_test']:.2%} | {r['epoch_seconds']} |"
              for r in sorted(runs, key=lambda r: (r["precision"], r["seed"]))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    parser.add_argument("--config", default=str(ROOT / "configs" / "seed-shallow.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    path = RESULTS / "precision_parity.json"
    config = Path(args.config).name
    saved = json.loads(path.read_text()) if path.exists() else {}
    runs = saved.get("runs", []) if saved.get("config") == config else []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for precision in PRECISIONS:
                row = train_and_test(args.config, precision, seed, args.data, Path(tmp))
                runs = [r for r in runs if (r["precision"], r["seed"]) != (precision, seed)]
                runs.append(row)
                print(row, flush=True)
                result = {"config": config, "runs": runs, **summary(runs)}
                RESULTS.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(result, indent=2) + "\n")
                (RESULTS / "precision_parity.md").write_text(markdown(config, runs, result))
    print((RESULTS / "precision_parity.md").read_text())


if __name__ == "__main__":
    main()
