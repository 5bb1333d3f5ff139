"""The accuracy table, results/benchmarks.{md,csv}, rebuilt from trained runs.

    python benchmarks/accuracy_table.py --runs DIR [--data fer2013.csv.xz] [--only-new]
        [--remeasure NAME ...]

``results/benchmarks.yaml`` lists the rows: a single run, an ensemble of runs, or an exported
ONNX model ("default" is the embedded one) with the run it came from, and the config that
reproduces each (``tta: false`` skips the ten-view columns, for models too slow to run them
eleven times). An ensemble may name an exported ONNX model among its runs: that model's size
and training time come from its own row, which must come above the ensemble's. Two FER+ columns
score every model's PrivateTest probabilities against the FER+ votes (``--ferplus``, default
``fer2013new.csv`` beside the data): the plurality label, on the rows whose most-voted column
is one of the seven emotions, and the FER+ authors' majority protocol (see
``fercnn.data.ferplus``), on their test set: the faces with a clear majority, the contempt ones
included and counted wrong. ``results/benchmarks.md`` keeps its prose; the table between its
markers is replaced. Every model was trained on Training with its checkpoint chosen on
PublicTest; here each is scored on PublicTest and PrivateTest, with and without ten-view TTA,
plus clean PrivateTest (rows whose image is not in Training). Each model's probabilities are
computed once and shared by the ensembles. A full rebuild takes about 15 minutes here;
``--only-new`` measures only the rows not yet in ``results/benchmarks.csv`` and keeps the
measured figures of the others (their name, kind, hardware and config text still come from the
YAML), so adding one model does not re-evaluate every earlier one; a kept row without the
authors'-majority column, added later, gets it where its models are at hand. Rows are matched
by name: a row whose runs changed must be renamed, or rebuilt in full, to be measured again;
``--remeasure NAME`` scores a kept row again where its model file was replaced (a bundled
model quantised again), keeping the sizes and minutes its lost runs gave. An ONNX row's source
run may be a folder without a checkpoint, as ``scripts/device_train.py`` brings runs back from
a GPU: its sizes then come from its ``config.yaml`` and its minutes from its ``history.csv``.
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import torch
import yaml

from fercnn.data import load_dataset, resolve_data_path
from fercnn.data.ferplus import check_ferplus_matches, load_ferplus
from fercnn.errors import FercnnError
from fercnn.evaluate import is_onnx, model_probabilities
from fercnn.metrics import classification_metrics
from fercnn.models import count_macs, count_params, create_model
from fercnn.recognition import BUNDLED_MODELS
from fercnn.training.checkpoint import load_checkpoint, model_from_checkpoint
from fercnn.training.config import load_config
from fercnn.training.report import read_history

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "results" / "benchmarks.yaml"
COLUMNS = ("name", "kind", "params", "mmac", "hardware", "train_minutes", "public",
           "public_tta", "private", "private_tta", "clean_private", "clean_private_tta",
           "ferplus_private", "ferplus_private_tta", "ferplus_majority_private",
           "ferplus_majority_private_tta", "config")
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
    """``70.60% (71.84%)``: without and, where measured, with TTA; n/a where the row's models
    were lost before the column existed."""
    if key not in row:
        return "n/a"
    tta = f" ({row[key + '_tta']:.2%})" if key + "_tta" in row else ""
    return f"{row[key]:.2%}{tta}"


def network_of(run: str, checkpoint: Callable[[str], dict], runs: Path) -> torch.nn.Module:
    """A run's network, for its size: from its checkpoint, else built from its config.yaml. A
    run trained on a borrowed GPU comes back without one (``scripts/device_train.py`` returns
    its ONNX export and its config, history and log), and sizes do not depend on the weights."""
    if (runs / run).is_dir() and not (runs / run / "best.pt").exists():
        return create_model(load_config(runs / run / "config.yaml").model)
    return model_from_checkpoint(checkpoint(run))


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
    nets = [network_of(r, checkpoint, runs) for r in trained]
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
    parser.add_argument("--remeasure", nargs="+", default=[], metavar="NAME",
                        help="with --only-new: measure these kept rows' scores again (a model "
                        "file replaced under the same name), keeping their sizes and minutes")
    args = parser.parse_args()
    spec = yaml.safe_load(SPEC.read_text())
    out = ROOT / "results"
    kept = measured_rows(out / "benchmarks.csv") if args.only_new else {}
    unknown = [name for name in args.remeasure if name not in kept]
    if unknown:
        raise FercnnError(f"--remeasure needs --only-new and rows of {SPEC.name} already "
                          f"measured; not: {', '.join(unknown)}")
    dataset = load_dataset(args.data)
    splits = {s: dataset.split(s) for s in ("PublicTest", "PrivateTest")}
    ferplus = load_ferplus(args.ferplus or resolve_data_path(args.data).parent / "fer2013new.csv")
    check_ferplus_matches(dataset, ferplus)
    private = dataset.split_mask("PrivateTest")
    plurality = ferplus.plurality[private]  # -1: no emotion
    plurality_scored = plurality >= 0  # rows whose most-voted column is one of the seven
    majority = ferplus.authors_majority[private]  # the FER+ authors' test protocol
    majority_scored = majority >= 0  # contempt included, as in their 8-class test set

    @cache
    def checkpoint(run: str) -> dict:
        return load_checkpoint(Path(args.runs) / run)

    @cache
    def probabilities(model: str, split: str, tta: bool) -> np.ndarray:
        trained = None if is_onnx(model) else checkpoint(model)
        return model_probabilities(model, splits[split].images, tta, trained)[0]

    def split_scores(p: np.ndarray, split: str) -> dict[str, float]:
        """The table's columns for one split's probabilities (no TTA suffix)."""
        part = splits[split]
        result = classification_metrics(p, part.labels, ~part.in_training)
        if split == "PublicTest":
            return {"public": result["accuracy"]}
        predicted = p.argmax(1)
        return {"private": result["accuracy"], "clean_private": result["clean_accuracy"],
                "ferplus_private": float(np.mean(
                    predicted[plurality_scored] == plurality[plurality_scored])),
                "ferplus_majority_private": float(np.mean(  # contempt never matches
                    predicted[majority_scored] == majority[majority_scored]))}

    def measure(row: dict, members: list[str], splits_wanted: tuple[str, ...],
                ttas: tuple[bool, ...], only_missing: bool = False) -> None:
        """Score the row's averaged probabilities. With ``only_missing`` the columns already in
        the row are kept, and the missing ones are added only if the others re-measure exactly:
        otherwise the models at hand are not the ones measured (a run trained again, or still
        training, under the same name)."""
        measured = {}
        for split in splits_wanted:
            for tta in ttas:
                p = np.mean([probabilities(m, split, tta) for m in members], axis=0)
                for key, value in split_scores(p, split).items():
                    measured[key + ("_tta" if tta else "")] = round(value, 4)
        if only_missing:
            changed = {k: (row[k], v) for k, v in measured.items() if k in row and row[k] != v}
            if changed:
                print(f"{row['name']}: left as it was; its models at hand give other figures "
                      f"(was, now): {changed}", flush=True)
                return
            measured = {k: v for k, v in measured.items() if k not in row}
        row.update(measured)

    def at_hand(model: str) -> bool:
        """An ONNX file, or a run with its checkpoint (a run folder from a GPU has none)."""
        run = Path(args.runs) / model
        return is_onnx(model) and (model in BUNDLED_MODELS or Path(model).exists()) \
            or run.is_file() or (run / "best.pt").exists()

    rows = []
    for entry in spec["rows"]:
        members = entry.get("runs") or [entry["onnx"]]
        ttas = (False, True) if entry.get("tta", True) else (False,)
        row = {"name": entry["name"], "kind": entry.get("kind", "single"),
               "hardware": entry.get("hardware", ""), "config": entry.get("config", "")}
        if entry["name"] in args.remeasure:  # its runs may be gone: keep what they gave
            row |= {k: kept[entry["name"]][k] for k in ("params", "mmac", "train_minutes")}
            measure(row, members, ("PublicTest", "PrivateTest"), ttas)
            rows.append(row)
            print(row, flush=True)
            continue
        if entry["name"] in kept:
            row |= kept[entry["name"]]
            if "ferplus_majority_private" not in row and all(map(at_hand, members)):
                measure(row, members, ("PrivateTest",), ttas, only_missing=True)
                print(row, flush=True)
            rows.append(row)
            continue
        done = zip(spec["rows"], rows, strict=False)  # the rows above this one
        exported = {e["onnx"]: r for e, r in done if "onnx" in e}
        measure_size(row, entry, exported, checkpoint, Path(args.runs))
        measure(row, members, ("PublicTest", "PrivateTest"), ttas)
        rows.append(row)
        print(row, flush=True)

    with open(out / "benchmarks.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| model | params | MMAC | hardware, training min | PublicTest (TTA) | "
             "PrivateTest (TTA) | clean PrivateTest (TTA) | FER+ PrivateTest, plurality (TTA) | "
             "FER+ PrivateTest, authors' majority (TTA) | config |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['params']:,} | {r['mmac']} | "
            f"{r['hardware']}, {r['train_minutes']} | {pair(r, 'public')} | "
            f"**{pair(r, 'private')}** | {pair(r, 'clean_private')} | "
            f"{pair(r, 'ferplus_private')} | {pair(r, 'ferplus_majority_private')} | "
            f"{r['config']} |")
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
