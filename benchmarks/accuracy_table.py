"""The accuracy table, results/benchmarks.{md,csv}, rebuilt from trained runs.

    python benchmarks/accuracy_table.py --runs DIR [--data fer2013.csv.xz] [--only-new]

``results/benchmarks.yaml`` lists the rows: a single run, an ensemble of runs, or an exported
ONNX model ("default" is the embedded one) with the run it came from, and the config that
reproduces each (``tta: false`` skips the ten-view columns, for models too slow to run them
eleven times). An ensemble may name an exported ONNX model among its runs: that model's size
and training time come from its own row, which must come above the ensemble's. The FER+ column
scores every model's PrivateTest probabilities against the FER+ majority labels (``--ferplus``,
default ``fer2013new.csv`` beside the data), on the rows whose majority is one of the seven
emotions. ``results/benchmarks.md`` keeps its prose; the table between its markers is replaced.
Every model was trained on Training with its checkpoint chosen on PublicTest; here each is
scored on PublicTest and PrivateTest, with and without ten-view TTA, plus clean PrivateTest
(rows whose image is not in Training). Each model's probabilities are computed once and shared
by the ensembles. A full rebuild takes about 15 minutes here; ``--only-new`` measures only the
rows not yet in ``results/benchmarks.csv`` and keeps the measured figures of the others (their
name, kind, hardware and config text still come from the YAML), so adding one model does not
re-evaluate every earlier one. Rows are matched by name: a row whose runs changed must be
renamed, or rebuilt in full, to be measured again.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import yaml

from fercnn.checkpoint import load_checkpoint, model_from_checkpoint
from fercnn.data import load_dataset, resolve_data_path
from fercnn.data.ferplus import check_ferplus_matches, load_ferplus
from fercnn.errors import FercnnError
from fercnn.evaluate import is_onnx, model_probabilities
from fercnn.metrics import classification_metrics
from fercnn.models import count_macs, count_params
from fercnn.report import read_history

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "results" / "benchmarks.yaml"
COLUMNS = ("name", "kind", "params", "mmac", "hardware", "train_minutes", "public",
           "public_tta", "private", "private_tta", "clean_private", "clean_private_tta",
           "ferplus_private", "ferplus_private_tta", "config")
TEXT_COLUMNS = ("name", "kind", "hardware", "config")


def measured_rows(path: Path) -> dict[str, dict]:
    """The measured columns of an earlier benchmarks.csv, by row name, typed as written
    (an empty cell, such as TTA skipped, is left out as it was in the row)."""
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        return {r["name"]: {k: int(v) if k == "params" else float(v) for k, v in r.items()
                            if v != "" and k not in TEXT_COLUMNS}
                for r in csv.DictReader(f)}


def pair(row: dict, key: str) -> str:
    """``70.60% (71.84%)``: without and, where measured, with TTA."""
    tta = f" ({row[key + '_tta']:.2%})" if key + "_tta" in row else ""
    return f"{row[key]:.2%}{tta}"


def measure_size(row: dict, entry: dict, exported: dict[str, dict],
                 checkpoint: Callable[[str], dict], runs: Path) -> None:
    """Parameters, multiply-accumulates and training minutes of a row's networks. An ONNX row
    counts the runs it was exported from; an ensemble member that is an ONNX model counts what
    that model's own row (above it) says, as its runs may no longer be at hand."""
    if "runs" in entry:
        onnx_members = [m for m in entry["runs"] if is_onnx(m)]
        trained = [m for m in entry["runs"] if not is_onnx(m)]
    else:  # an ONNX row names its runs
        onnx_members, trained = [], entry["source"]
    for m in onnx_members:
        if m not in exported:
            raise FercnnError(f"{entry['name']}: its member {m} needs its own row "
                              f"(onnx: {m}) above it in {SPEC.name}")
    nets = [model_from_checkpoint(checkpoint(r)) for r in trained]
    sizes = [exported[m] for m in onnx_members]
    row["params"] = sum(count_params(n) for n in nets) + sum(e["params"] for e in sizes)
    row["mmac"] = round(sum(count_macs(n) for n in nets) / 1e6
                        + sum(e["mmac"] for e in sizes), 1)
    row["train_minutes"] = round(sum(  # every epoch run, not just up to the best one
        sum(h["seconds"] for h in read_history(runs / r / "history.csv")) for r in trained) / 60
        + sum(e["train_minutes"] for e in sizes), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="folder holding the run folders")
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    parser.add_argument("--ferplus", help="FER+ labels (default: fer2013new.csv beside the data)")
    parser.add_argument("--only-new", action="store_true",
                        help="measure only rows not yet in results/benchmarks.csv; keep the rest")
    args = parser.parse_args()
    spec = yaml.safe_load(SPEC.read_text())
    out = ROOT / "results"
    kept = measured_rows(out / "benchmarks.csv") if args.only_new else {}
    dataset = load_dataset(args.data)
    splits = {s: dataset.split(s) for s in ("PublicTest", "PrivateTest")}
    ferplus = load_ferplus(args.ferplus or resolve_data_path(args.data).parent / "fer2013new.csv")
    check_ferplus_matches(dataset, ferplus)
    ferplus_private = ferplus.majority[dataset.split_mask("PrivateTest")]  # -1: no emotion
    ferplus_scored = ferplus_private >= 0  # rows whose FER+ majority is one of the seven

    @cache
    def checkpoint(run: str) -> dict:
        return load_checkpoint(Path(args.runs) / run)

    @cache
    def probabilities(model: str, split: str, tta: bool) -> np.ndarray:
        trained = None if is_onnx(model) else checkpoint(model)
        return model_probabilities(model, splits[split].images, tta, trained)[0]

    rows = []
    for entry in spec["rows"]:
        members = entry.get("runs") or [entry["onnx"]]
        row = {"name": entry["name"], "kind": entry.get("kind", "single"),
               "hardware": entry.get("hardware", ""), "config": entry.get("config", "")}
        if entry["name"] in kept:
            rows.append(row | kept[entry["name"]])
            continue
        done = zip(spec["rows"], rows, strict=False)  # the rows above this one
        exported = {e["onnx"]: r for e, r in done if "onnx" in e}
        measure_size(row, entry, exported, checkpoint, Path(args.runs))
        for split, key in (("PublicTest", "public"), ("PrivateTest", "private")):
            for tta in (False, True) if entry.get("tta", True) else (False,):
                p = np.mean([probabilities(m, split, tta) for m in members], axis=0)
                part = splits[split]
                result = classification_metrics(p, part.labels, ~part.in_training)
                suffix = "_tta" if tta else ""
                row[key + suffix] = round(result["accuracy"], 4)
                if split == "PrivateTest":
                    row["clean_private" + suffix] = round(result["clean_accuracy"], 4)
                    row["ferplus_private" + suffix] = round(classification_metrics(
                        p[ferplus_scored], ferplus_private[ferplus_scored])["accuracy"], 4)
        rows.append(row)
        print(row, flush=True)

    with open(out / "benchmarks.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| model | params | MMAC | hardware, training min | PublicTest (TTA) | "
             "PrivateTest (TTA) | clean PrivateTest (TTA) | FER+ PrivateTest (TTA) | config |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['params']:,} | {r['mmac']} | "
            f"{r['hardware']}, {r['train_minutes']} | {pair(r, 'public')} | "
            f"**{pair(r, 'private')}** | {pair(r, 'clean_private')} | "
            f"{pair(r, 'ferplus_private')} | {r['config']} |")
    table = "\n".join(lines)
    text = SPEC.with_suffix(".md").read_text()
    start, end = text.index("<!-- table -->"), text.index("<!-- /table -->")
    (out / "benchmarks.md").write_text(
        text[:start] + "<!-- table -->\n" + table + "\n" + text[end:])
    print(table)


if __name__ == "__main__":
    try:
        main()
    except FercnnError as e:  # a wrong --data/--ferplus: its one-line reason, not a traceback
        raise SystemExit(f"accuracy_table: error: {e}") from None
