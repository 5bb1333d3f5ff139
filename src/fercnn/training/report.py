"""``fercnn compare``: train several configs (reusing finished runs) and tabulate them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import FercnnError
from .config import load_config

COLUMNS = ("model", "params", "train_loss", "val_loss", "train_acc", "val_acc", "test_acc",
           "clean_test_acc", "epoch_seconds")


def finished_run(run: Path, digest: str) -> bool:
    """True when ``run`` holds a completed run of exactly these settings, checkpoint included
    (results folders are committed without their checkpoints)."""
    if not (run / "best.pt").is_file():
        return False
    try:
        metrics = json.loads((run / "metrics.json").read_text())
    except (OSError, ValueError):
        return False
    return metrics.get("finished") is True and metrics.get("config_digest") == digest


def read_history(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: float(v) if k != "epoch" else int(v) for k, v in row.items()}
                for row in csv.DictReader(f)]


def compare(config_paths: list[str], data: str | None = None,
            out: str | Path = "results/comparison") -> str:
    """Train what is missing, evaluate each best checkpoint on PrivateTest, write the tables
    and figures into ``out``; returns the Markdown table."""
    from ..evaluate import evaluate
    from ..plots import compare_curves
    from .loop import train

    out = Path(out)
    configs = [load_config(p) for p in config_paths]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise FercnnError("compare: two configs share a name; rename one of the files")
    rows, histories = [], {}
    for config in configs:
        if data is not None:
            config.data = data
        run = out / config.name
        if finished_run(run, config.digest()):
            print(f"{config.name}: reusing the finished run in {run}", flush=True)
        else:
            train(config, run, resume=(run / "last.pt").exists())
        history = read_history(run / "history.csv")
        histories[config.name] = history
        metrics = json.loads((run / "metrics.json").read_text())
        best = next(r for r in history if r["epoch"] == metrics["best_epoch"])
        test = evaluate([run / "best.pt"], data=config.data, split="PrivateTest", out=run)
        rows.append({"model": config.name, "params": metrics["params"],
                     "train_loss": best["train_loss"], "val_loss": best["val_loss"],
                     "train_acc": best["train_acc"], "val_acc": best["val_acc"],
                     "test_acc": round(test["accuracy"], 4),
                     "clean_test_acc": round(test["clean_accuracy"], 4),
                     "epoch_seconds": metrics["epoch_seconds"],
                     "_epoch": metrics["best_epoch"], "_epochs": metrics["epochs_run"]})
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "comparison.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    compare_curves(histories, out / "validation_curves.png")
    table = markdown_table(rows)
    (out / "comparison.md").write_text(
        "# Model comparison\n\nEach model's checkpoint is the epoch with the best validation "
        "(PublicTest) accuracy; test is PrivateTest, evaluated once; clean test leaves out the "
        "PrivateTest images that also appear in Training.\n\n" + table + "\n")
    return table


def markdown_table(rows: list[dict]) -> str:
    lines = ["| model | params | epoch | train loss | val loss | train acc | val acc | "
             "test acc | clean test acc | s/epoch |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['_epoch']}/{r['_epochs']} | "
            f"{r['train_loss']:.3f} | {r['val_loss']:.3f} | {r['train_acc']:.1%} | "
            f"{r['val_acc']:.1%} | {r['test_acc']:.1%} | {r['clean_test_acc']:.1%} | "
            f"{r['epoch_seconds']:.1f} |")
    return "\n".join(lines)
