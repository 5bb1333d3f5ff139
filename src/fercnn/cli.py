"""The ``fercnn`` command. Each subcommand imports what it needs when it runs, so recognition
never pays for (or requires) torch, and user mistakes end as one line on stderr."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

from .errors import FercnnError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    COMMANDS[fn.__name__.removeprefix("cmd_").replace("_", "-")] = fn
    return fn


@command
def cmd_info(args: argparse.Namespace) -> int:
    from .data import load_dataset

    dataset = load_dataset(args.data, val_fraction=args.val_fraction, ferplus=args.ferplus)
    summary = dataset.summary()
    if args.grid:
        from .plots import sample_grid

        train = dataset.split("Training")
        sample_grid(train.images, train.labels, args.grid)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    from .labels import EMOTIONS

    print(f"{summary['source']}: {summary['total']} images, "
          f"{summary['distinct_images']} distinct")
    print(f"{'split':<12}{'total':>7}" + "".join(f"{e:>9}" for e in EMOTIONS)
          + f"{'in Training':>13}")
    for name, part in summary["splits"].items():
        dup = "" if part["in_training"] is None else str(part["in_training"])
        print(f"{name:<12}{part['total']:>7}"
              + "".join(f"{part['classes'][e]:>9}" for e in EMOTIONS) + f"{dup:>13}")
    if args.grid:
        print(f"sample grid written to {args.grid}")
    return 0


@command
def cmd_data(args: argparse.Namespace) -> int:
    from .data import export_folders, load_dataset

    dataset = load_dataset(args.csv)
    written = export_folders(dataset, args.outdir)
    print(f"wrote {sum(written.values())} PNG images to {args.outdir} "
          f"({', '.join(f'{k} {v}' for k, v in written.items())})")
    return 0


@command
def cmd_models(args: argparse.Namespace) -> int:
    from .models import count_macs, count_params, create_model, model_names

    rows = []
    for name in model_names():
        model = create_model(name)
        rows.append({"name": name, "params": count_params(model), "macs": count_macs(model)})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'model':<14}{'params':>14}{'MACs/image':>16}")
        for r in rows:
            print(f"{r['name']:<14}{r['params']:>14,}{r['macs']:>16,}")
    return 0


def _config_with_overrides(args: argparse.Namespace):
    from dataclasses import asdict

    from .training.config import config_from_dict, load_config

    config = load_config(args.config)
    overrides = {k: getattr(args, k) for k in ("data", "ferplus", "epochs", "limit", "device",
                                               "precision", "seed")
                 if getattr(args, k, None) is not None}
    if "ferplus" in overrides and config.crowd_votes and not config.ferplus:
        overrides["crowd_votes"] = overrides.pop("ferplus")  # the votes file the config blends
    return config_from_dict({**asdict(config), **overrides}, args.config)


@command
def cmd_train(args: argparse.Namespace) -> int:
    from .training.loop import train

    config = _config_with_overrides(args)
    out = Path(args.out) if args.out else Path("runs") / config.name
    metrics = train(config, out, resume=args.resume, minutes=args.minutes)
    print(f"best validation accuracy {metrics['best_val_acc']:.4f} at epoch "
          f"{metrics['best_epoch']}; run folder {out}")
    return 0


@command
def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    if args.images:
        return _evaluate_images(args)
    result = evaluate(args.models, data=args.data, split=args.split, tta=args.tta or "none",
                      out=args.out, ferplus=args.ferplus, ferplus_rule=args.ferplus_rule)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    clean = result.get("clean_accuracy")
    what = ", ".join(m["path"] for m in result["models"])
    print(f"{what}{_with_tta(result['tta'])} on {args.split}: "
          f"accuracy {result['accuracy']:.4f}"
          + (f", clean {clean:.4f} ({result['clean_images']} images)" if clean is not None
             else "")
          + f", loss {result['loss']:.4f}, macro F1 {result['macro_f1']:.4f}")
    if "contempt_images" in result:
        print(f"counting the {result['contempt_images']} contempt faces as errors: accuracy "
              f"{result['accuracy_with_contempt']:.4f}")
    print(f"{'class':<10}{'precision':>10}{'recall':>8}{'F1':>8}{'n':>6}")
    for name, m in result["per_class"].items():
        print(f"{name:<10}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}"
              f"{m['support']:>6}")
    return 0


def _with_tta(mode: str) -> str:
    return "" if mode == "none" else f" with {mode} TTA"


def _evaluate_images(args: argparse.Namespace) -> int:
    """``evaluate MODEL --images DIR``: labelled photos through the whole recognition path."""
    from .recognition.evaluate import evaluate_images
    from .recognition.priors import TRAINED_ON

    if len(args.models) != 1:
        raise FercnnError("--images scores one model at a time")
    args.model, args.tta = args.models[0], args.tta or "mirror"
    result = evaluate_images(_recognizer(args), args.images, detect=not args.no_detect,
                             out=args.out)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    reader = ", with the photo reader" if result["photo_reader"] else ""
    prior = "" if result["prior"] == TRAINED_ON else f", prior {result['prior']}"
    print(f"{args.model} on {result['images']} photos in {args.images}"
          f"{_with_tta(result['tta'])}{reader}{prior}: accuracy {result['accuracy']:.4f}, "
          f"macro recall {result['macro_recall']:.4f}, no face found "
          f"{result['no_face']:.1%}")
    print(f"{'class':<10}{'recall':>8}{'n':>6}")
    for name, m in result["per_class"].items():
        print(f"{name:<10}{m['recall']:>8.3f}{m['support']:>6}")
    return 0


@command
def cmd_explain(args: argparse.Namespace) -> int:
    from .explain import explain_files, resolve_method
    from .recognition import Recognizer, is_onnx
    from .recognition.recognizer import make_detector

    method = resolve_method(args.model, args.method)  # a wrong pairing fails before any work
    files, problems = _image_files(args.images, skip=args.out)
    for problem in problems:
        print(f"fercnn: error: {problem}", file=sys.stderr)
    names = [t.with_name(t.name.removesuffix("-emotions.png"))  # unique, without suffixes
             for t in _annotated_names([name for _, name in files])]
    finder = Recognizer(args.model if is_onnx(args.model) else None, align=not args.no_align,
                        detector=make_detector(args.detector, args.min_face))
    report = explain_files(args.model, [(path, name) for (path, _), name in
                                        zip(files, names, strict=True)],
                           args.out, method, args.target, finder, detect=not args.no_detect)
    for entry in report:
        if not entry["faces"]:
            problems.append(f"{entry['image']}: no face found")
            print(f"fercnn: error: {entry['image']}: no face found", file=sys.stderr)
        for i, face in enumerate(entry["faces"]):
            print(f"{entry['image']}  face {i + 1} at {tuple(face['box'])}: {face['emotion']}"
                  f"  ({method} map of {face['target']})")
    print(f"maps written to {args.out}")
    return 1 if problems else 0


@command
def cmd_tune(args: argparse.Namespace) -> int:
    from .training.space import load_space
    from .training.tune import tune

    base = _config_with_overrides(args)
    space = load_space(args.space, base)
    folder = Path(args.study) if args.study else Path("studies") / base.name
    summary = tune(base, space, folder, args.trials, minutes=args.minutes, resume=args.resume,
                   storage=args.storage, pruner=args.pruner,
                   trial_minutes=args.trial_minutes)
    states = ", ".join(f"{n} {s}" for s, n in summary["states"].items()) or "no trials"
    print(f"study {folder}: {states}")
    if "best_value" in summary:
        print(f"best: trial {summary['best_trial']} ({summary['best_run']}), validation "
              f"accuracy {summary['best_value']:.4f}; config {summary['best_config']}")
    for line in summary["skipped"]:
        print(f"figure skipped: {line}")
    print(f"trials: {summary['trials_csv']}; figures: {', '.join(summary['figures']) or 'none'}")
    return 0


@command
def cmd_compare(args: argparse.Namespace) -> int:
    from .training.report import compare

    table = compare(args.configs, data=args.data, out=args.out)
    print(table)
    return 0


@command
def cmd_export(args: argparse.Namespace) -> int:
    from .recognition import is_onnx
    from .training.export import ensemble_onnx, export_onnx, requantize_onnx

    exported = [c for c in args.checkpoints if is_onnx(c)]
    if exported and len(exported) < len(args.checkpoints):
        raise FercnnError(f"{exported[0]} is an exported model: an ensemble joins exported "
                          "models or runs, not both")
    if len(exported) > 1:
        metadata = ensemble_onnx(exported, args.out, int8=args.int8, data=args.data,
                                 score=args.score, weights=args.weights)
    elif exported and (not args.int8 or args.weights):
        raise FercnnError(f"{exported[0]} is an exported model: alone it can only be quantised "
                          "again (fercnn export MODEL.onnx --int8 --out NEW.onnx)")
    elif exported:
        metadata = requantize_onnx(exported[0], args.out, data=args.data, score=args.score)
    else:
        metadata = export_onnx(args.checkpoints, args.out, int8=args.int8, data=args.data,
                               score=args.score, weights=args.weights)
    accuracy = metadata["private_test_accuracy"]
    print(f"wrote {args.out} ({metadata['model']}, {metadata['quantization']}"
          + (f", PrivateTest accuracy {accuracy:.4f}" if accuracy is not None else "") + ")")
    return 0


@command
def cmd_calibrate(args: argparse.Namespace) -> int:
    from .training.export import calibrate_onnx

    entry = calibrate_onnx(args.model, args.out, data=args.data)["calibration"]
    before, after = entry["nll"]
    print(f"wrote {args.out}: probabilities calibrated on {entry['faces']} {entry['split']} "
          f"faces (scale {entry['scale']:.3f}; negative log-likelihood {before:.4f} -> "
          f"{after:.4f}), used by --prior photos")
    return 0


def _image_files(paths: list[str], skip: str | None = None) -> tuple[list, list[str]]:
    """(image file, its name for outputs) from files and folders (recursively), and one message
    per bad path. A file found in a folder keeps its path below that folder as its name, so
    ``a/x.jpg`` and ``b/x.jpg`` do not share one annotated copy; files under ``skip`` (the
    output folder) are left out, so a second run does not read the first one's copies."""
    from .data.folders import IMAGE_SUFFIXES

    skipped = Path(skip).resolve() if skip else None
    files, problems = [], []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not (skipped and p.resolve().is_relative_to(skipped)))
            if not found:
                problems.append(f"{path}: no images in this folder")
            files += [(p, p.relative_to(path)) for p in found]
        elif path.is_file():
            files.append((path, Path(path.name)))
        else:
            problems.append(f"{path}: no such file or folder")
    return files, problems


def _annotated_names(names: list) -> list:
    """``<name>-emotions.png`` for each output name, its folders kept; where two would still
    be one file (``x.jpg`` and ``x.png``), the later ones keep their suffix (``x-png-...``)."""
    targets, taken = [], set()
    for name in names:
        target = name.with_name(f"{name.stem}-emotions.png")
        if target in taken:
            target = name.with_name(f"{name.stem}-{name.suffix[1:]}-emotions.png")
        count = 2
        while target in taken:
            target, count = name.with_name(f"{name.stem}-{count}-emotions.png"), count + 1
        taken.add(target)
        targets.append(target)
    return targets


def _describe(face) -> str:
    """``happy  (happy 91%, neutral 5%, surprise 2%)``"""
    top = sorted(face.probabilities.items(), key=lambda kv: -kv[1])[:3]
    return f"{face.emotion}  (" + ", ".join(f"{k} {v:.0%}" for k, v in top) + ")"


def _recognizer(args: argparse.Namespace):
    """The Recognizer for --model, --views (--tta), --detector, --min-face, --no-align,
    --no-photo-reader and --prior."""
    from .recognition import Recognizer
    from .recognition.recognizer import make_detector

    return Recognizer(args.model, detector=make_detector(args.detector, args.min_face),
                      tta=args.tta, align=not args.no_align,
                      photo_reader=False if args.no_photo_reader else None,
                      prior=args.prior)


def _report_predictions(results, total: int, csv_path: str | None,
                        as_json: bool) -> tuple[list[dict], list[str]]:
    """``predict``'s outputs as results arrive: a line per face (unless ``as_json``), --csv
    rows, one error line per unreadable or faceless image, under a progress bar (tqdm) on
    stderr when that is a terminal. Returns the JSON report and the problems."""
    import contextlib
    import csv

    from tqdm import tqdm

    from .recognition.batch import CSV_FIELDS

    report, problems = [], []
    with contextlib.ExitStack() as stack:
        rows = None
        if csv_path:  # opened first: an unwritable --csv fails before any image is read
            rows = csv.DictWriter(stack.enter_context(open(csv_path, "w", newline="")),
                                  fieldnames=CSV_FIELDS)
            rows.writeheader()
        bar = stack.enter_context(tqdm(results, total=total, unit="image", file=sys.stderr,
                                       leave=False, disable=None if total > 1 else True))
        for result in bar:
            problem = result.error
            if problem is None:
                report.append(result.to_dict())
                if rows:
                    rows.writerows(result.csv_rows())
                if not result.faces:  # in the report all the same
                    problem = f"{result.path}: no face found"
            if problem:
                problems.append(problem)
                bar.write(f"fercnn: error: {problem}", file=sys.stderr)
            for i, face in enumerate([] if as_json else result.faces):
                bar.write(f"{result.path}  face {i + 1} at {tuple(face.box)}: "
                          f"{_describe(face)}", file=sys.stdout)
    return report, problems


@command
def cmd_predict(args: argparse.Namespace) -> int:
    from .recognition.batch import recognize_paths

    files, problems = _image_files(args.paths, skip=args.out)
    targets = ([Path(args.out) / t for t in _annotated_names([name for _, name in files])]
               if args.out else None)
    results = recognize_paths([path for path, _ in files], args.model, args.workers,
                              detector=args.detector, min_face=args.min_face, tta=args.tta,
                              align=not args.no_align, detect=not args.no_detect,
                              photo_reader=not args.no_photo_reader, prior=args.prior,
                              outputs=targets)
    for problem in problems:
        print(f"fercnn: error: {problem}", file=sys.stderr)
    report, failed = _report_predictions(results, len(files), args.csv, args.json)
    problems += failed
    if args.json:
        print(json.dumps(report, indent=2))
    return 1 if problems else 0


@command
def cmd_video(args: argparse.Namespace) -> int:
    from .recognition.video import process_video

    if (args.input is None) == (args.camera is None):
        raise FercnnError("give a video file or --camera N (one of them)")
    recognizer = _recognizer(args)
    timeline = args.timeline
    if timeline is None and args.csv:
        timeline = str(Path(args.csv).with_suffix("")) + "-timeline.png"
    summary = process_video(recognizer, args.input if args.camera is None else args.camera,
                            out=args.out, csv_path=args.csv, timeline=timeline,
                            every=args.every, max_frames=args.max_frames)
    emotions = ", ".join(f"{k} {v}" for k, v in summary["emotions"].items()) or "none"
    print(f"{summary['frames']} frames read, {summary['analysed']} analysed, "
          f"{summary['faces']} faces found ({emotions})")
    for name, value in (("annotated video", args.out), ("CSV", args.csv),
                        ("timeline", timeline)):
        if value:
            print(f"{name}: {value}")
    if not summary["faces"]:
        source = args.input if args.camera is None else f"camera {args.camera}"
        raise FercnnError(f"{source}: no face found in any of the {summary['analysed']} "
                          "frames analysed")
    return 0


@command
def cmd_demo(args: argparse.Namespace) -> int:
    from .recognition import DEMO_PHOTO, Recognizer, load_image
    from .recognition.annotate import write_annotated

    photo = load_image(DEMO_PHOTO)
    faces = Recognizer(args.model).predict(photo)
    if not faces:
        raise FercnnError(f"{DEMO_PHOTO}: no face found")
    written = write_annotated(photo, faces, Path(args.out) / f"{DEMO_PHOTO.stem}-emotions.png")
    for face in faces:
        print(f"face at {tuple(face.box)}: {_describe(face)}")
    print(f"annotated photo: {written}  (NASA portrait of astronaut Eileen Collins, "
          "public domain)")
    return 0


@command
def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.command import serve

    return serve(args)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line (pointing at --help), like every other error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M.onnx", help="an exported model, 'accurate' for the "
                   "bundled ensemble or 'tiny' for the smallest, fastest model (default: the "
                   "embedded model)")


def _add_recognition_options(p: argparse.ArgumentParser) -> None:
    from .tta import TTA_MODES

    _add_model(p)
    p.add_argument("--views", dest="tta", choices=TTA_MODES, default="mirror",
                   help="views of each face whose probabilities are averaged: 'mirror' (default: "
                   "the face and its mirror image), 'ten' (shifts too: more accurate, ten times "
                   "the model's work) or 'none' (the model's own output, fastest)")
    p.add_argument("--tta", dest="tta", action="store_const", const="ten",
                   help="the same as --views ten")
    _add_detection_options(p)
    _add_reading_options(p)


def _add_reading_options(p: argparse.ArgumentParser) -> None:
    """predict, video and evaluate --images: how a face is read, not how it is found."""
    from .recognition.priors import PRIORS, TRAINED_ON

    p.add_argument("--no-photo-reader", action="store_true",
                   help="read faces with the model alone: without the photo reader that the "
                   "bundled default and accurate models blend in on faces larger than 48 px")
    p.add_argument("--prior", choices=tuple(PRIORS), default=TRAINED_ON,
                   help="the mix of expressions faces are read for: 'fer2013' (default: the "
                   "model as trained, a seventh of faces afraid) or 'photos' (mostly happy and "
                   "neutral, as in web photos: more faces right on everyday photos, rare "
                   "expressions such as fear answered far less)")


def _add_detection_options(p: argparse.ArgumentParser) -> None:
    """How faces are found and framed: predict, video and evaluate --images share these."""
    p.add_argument("--detector", choices=("blazeface", "haar"), default="blazeface",
                   help="face detector: MediaPipe's BlazeFace (default; faces of every size, "
                   "eye keypoints for alignment) or OpenCV's Haar cascade")
    p.add_argument("--min-face", type=_positive_int, metavar="PX",
                   help="smallest face searched for, in pixels (default 48; Haar: 40, in the "
                        "photo scaled to at most 1024 px); lower finds smaller faces, more "
                        "slowly")
    p.add_argument("--no-align", action="store_true",
                   help="do not turn tilted faces upright from their eye keypoints")


def _add_data_commands(sub) -> None:
    """info, data, models: what the data and the model registry hold."""
    p = sub.add_parser("info", help="class counts per split, duplicates and a sample grid")
    p.add_argument("data", nargs="?", help="FER-2013 CSV (.csv/.gz/.xz) or image folder "
                   "(default: $FERCNN_DATA)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--grid", metavar="FILE.png", help="write a grid of sample faces per class")
    p.add_argument("--ferplus", metavar="CSV", help="relabel with FER+ votes (most-voted class)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="image folders without val/: share of train/ held out (default 0.1)")

    p = sub.add_parser("data", help="data utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    e = data_sub.add_parser("export-folders", help="write the CSV as train/val/test/<class>/*.png")
    e.add_argument("csv")
    e.add_argument("outdir")

    p = sub.add_parser("models", help="registered models with parameters and MACs")
    p.add_argument("--json", action="store_true")


def _add_training_commands(sub) -> None:
    """train, tune, compare, export: the training layer's commands."""
    p = sub.add_parser("train", help="train a model from a YAML config")
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--data", help="FER-2013 CSV or image folder (default: config, $FERCNN_DATA)")
    p.add_argument("--ferplus", metavar="CSV",
                   help="FER+ votes file (default: the config's ferplus or crowd_votes)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--minutes", type=_positive_float, metavar="M",
                   help="a time budget: after each of the first four epochs, as many of the "
                        "config's epochs as fit in M minutes at the median epoch's pace (data "
                        "loading counted), the learning-rate "
                        "schedule fitted to them and an EMA warmed up (ema_warmup); the run's "
                        "config.yaml records both")
    p.add_argument("--limit", type=int, metavar="N", help="train on the first N images")
    p.add_argument("--out", metavar="DIR", help="run folder (default runs/<config name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"))
    p.add_argument("--seed", type=int)

    p = sub.add_parser("tune", help="search a config's hyper-parameters (Optuna, resumable)")
    p.add_argument("--config", required=True, metavar="BASE.yaml")
    p.add_argument("--space", required=True, metavar="SPACE.yaml",
                   help="settings and their ranges, e.g. lr: {type: float, low: 0.001, "
                   "high: 0.1, log: true} (docs/research.md)")
    p.add_argument("--trials", required=True, type=_positive_int, metavar="N",
                   help="trials to finish, counting those of a resumed study")
    p.add_argument("--minutes", type=_positive_float, metavar="M",
                   help="stop the study after M minutes (checked after each epoch)")
    p.add_argument("--trial-minutes", type=_positive_float, metavar="M",
                   help="a fixed CPU budget per trial: each trains as `fercnn train --minutes "
                   "M` would, the config's epochs fitted to it")
    p.add_argument("--study", metavar="DIR", help="study folder: its database and one run "
                   "folder per trial (default studies/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the study in --study; trials a kill interrupted run again")
    p.add_argument("--storage", metavar="URL", help="an Optuna database URL shared by "
                   "several machines (default: SQLite in the study folder)")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median",
                   help="stop poor trials early on their validation accuracy (default median)")
    p.add_argument("--data", help="FER-2013 CSV or image folder (default: config, $FERCNN_DATA)")

    p = sub.add_parser("compare", help="train several configs and tabulate them")
    p.add_argument("configs", nargs="+", metavar="CONFIG")
    p.add_argument("--data")
    p.add_argument("--out", default="results/comparison", metavar="DIR")

    p = sub.add_parser("export", help="export a trained run (or an ensemble) to ONNX")
    p.add_argument("checkpoints", nargs="+", metavar="RUN_OR_CHECKPOINT",
                   help="several: one model averaging their probabilities (runs, or exported "
                   ".onnx models); one exported .onnx (or bundled name) with --int8: quantised "
                   "again with the current settings")
    p.add_argument("--out", required=True, metavar="MODEL.onnx")
    p.add_argument("--int8", action="store_true", help="static int8, calibrated on Training")
    p.add_argument("--data", help="data for int8 calibration and --score")
    p.add_argument("--score", action="store_true", help="read PrivateTest once and record "
                   "its accuracy in the file: for the model you report, chosen without it")
    # PrivateTest is left unread unless --score asks (the default since 2026-12-07); the old
    # flag that asked for that is still accepted so earlier command lines run unchanged
    p.add_argument("--no-score", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="an ensemble's members weighted (one positive weight each, normalised) "
                   "instead of averaged")

    p = sub.add_parser("calibrate", help="fit an exported model's calibration for --prior "
                       "photos on PublicTest (new exports with --data carry one already)")
    p.add_argument("model", metavar="MODEL.onnx", help="an exported model or a bundled name")
    p.add_argument("--out", required=True, metavar="MODEL.onnx",
                   help="the calibrated copy (may be MODEL itself)")
    p.add_argument("--data", help="FER-2013 CSV or image folder (default: $FERCNN_DATA)")


def _add_evaluation_commands(sub) -> None:
    """evaluate, explain: how good a model is and where it looks."""
    from .labels import SPLITS
    from .tta import TTA_MODES

    p = sub.add_parser("evaluate", help="metrics of trained models (or their ensemble)")
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="a run folder, a .pt checkpoint, an exported .onnx model, or a bundled "
                   "model: 'default', 'accurate' or 'tiny'; several are averaged as an ensemble")
    p.add_argument("--views", dest="tta", choices=TTA_MODES,
                   help="views of each face whose probabilities are averaged: 'ten' (shifts and "
                   "mirror images), 'mirror' or 'none'; default: 'none' on a split (the "
                   "model's own accuracy), 'mirror' with --images (what predict gives)")
    p.add_argument("--tta", dest="tta", action="store_const", const="ten",
                   help="the same as --views ten")
    p.add_argument("--ferplus", metavar="CSV", help="score against FER+ labels "
                   "(default for runs trained on FER+)")
    p.add_argument("--ferplus-rule", choices=("plurality", "majority"),
                   default="plurality",
                   help="FER+ label of a face: its most-voted class, or the FER+ authors' test "
                   "protocol (a class with over half of the votes; ambiguous faces left out)")
    p.add_argument("--data")
    p.add_argument("--split", default="PublicTest", choices=SPLITS,
                   help="the split to score (default PublicTest, where models and settings "
                   "are chosen; PrivateTest is the final report, read once)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", metavar="DIR", help="write metrics JSON and confusion matrix here")
    p.add_argument("--images", metavar="DIR", help="score labelled photos instead, through "
                   "the whole recognition path: DIR/labels.csv (path,label) or class folders")
    p.add_argument("--no-detect", action="store_true",
                   help="with --images: each photo is one pre-cropped face")
    _add_detection_options(p)
    _add_reading_options(p)

    from .labels import EMOTIONS

    p = sub.add_parser("explain", help="saliency maps: where in each face a model looked")
    p.add_argument("model", metavar="MODEL", help="a run folder or .pt checkpoint (Grad-CAM), "
                   "an exported .onnx model or 'default'/'accurate'/'tiny' (occlusion, no torch)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of them")
    p.add_argument("--out", default="explain", metavar="DIR",
                   help="where the PNGs go (default ./explain)")
    p.add_argument("--method", choices=("gradcam", "occlusion"),
                   help="default: gradcam for checkpoints, occlusion for ONNX models")
    p.add_argument("--target", choices=EMOTIONS, metavar="CLASS",
                   help="explain this class instead of the predicted one")
    p.add_argument("--no-detect", action="store_true",
                   help="each image is one pre-cropped face")
    _add_detection_options(p)


def _add_recognition_commands(sub) -> None:
    """predict, video, demo, serve: the recognition layer's front ends."""
    p = sub.add_parser("predict", help="emotions of the faces in images or folders")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of them")
    p.add_argument("--json", action="store_true", help="print JSON instead of a line per face")
    p.add_argument("--no-detect", action="store_true",
                   help="each image is one pre-cropped face")
    p.add_argument("--out", metavar="DIR", help="write annotated copies here")
    p.add_argument("--csv", metavar="FILE", help="write one row per face (path, face, box, "
                   "emotion, score, seven probabilities); a row with only the path for an "
                   "image without a face")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="recognise in N processes, each loading the model once, results in "
                   "input order (default 1: in this process)")
    _add_recognition_options(p)

    p = sub.add_parser("video", help="emotions over a video file or a camera")
    p.add_argument("input", nargs="?", metavar="IN", help="a video file")
    p.add_argument("--camera", type=int, metavar="N", help="read camera N instead (e.g. 0)")
    p.add_argument("--out", metavar="OUT.mp4", help="write the annotated video")
    p.add_argument("--csv", metavar="FILE", help="per frame and face: box, emotion, "
                   "probabilities (a timeline PNG is written beside it)")
    p.add_argument("--timeline", metavar="PNG", help="where to draw the emotion timeline")
    p.add_argument("--every", type=int, default=1, metavar="N", help="analyse every N-th frame")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    _add_recognition_options(p)

    p = sub.add_parser("demo", help="recognise the faces in a bundled public-domain photo")
    p.add_argument("--out", default=".", metavar="DIR", help="where to write the result")
    _add_model(p)

    from .serve.command import add_parser as add_serve_parser  # no FastAPI imported here

    add_serve_parser(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="fercnn", description=(
        "Facial expression recognition: train and compare networks on FER-2013, and name "
        "the emotions of the faces in photos, folders, videos or a camera."))
    from . import __version__

    parser.add_argument("--version", action="version", version=f"fercnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_data_commands(sub)
    _add_training_commands(sub)
    _add_evaluation_commands(sub)
    _add_recognition_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except FercnnError as e:
        print(f"fercnn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fercnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # a path the user gave that cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"fercnn: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
