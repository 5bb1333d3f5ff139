"""The bundled models on labelled in-the-wild photos through the whole recognition path.

Runs what ``fercnn evaluate MODEL --images DIR`` runs, for each detector and alignment setting,
on wild-dev (validation only: never trained on), and writes
benchmarks/results/wild_dev.{json,md}. Extra exported models can be compared with --model.

    FERCNN_REAL_DATA=../shared/data python benchmarks/wild_dev.py [--model runs/x.onnx]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from fercnn.recognition import Recognizer
from fercnn.recognition.evaluate import evaluate_images
from fercnn.recognition.recognizer import make_detector

RESULTS = Path(__file__).resolve().parent / "results"
SETTINGS = (("blazeface", True), ("blazeface", False), ("haar", False))


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("FERCNN_REAL_DATA", "../shared/data"))
    parser.add_argument("--model", action="append", default=[],
                        help="another exported model, scored with the default path")
    args = parser.parse_args()
    folder = Path(args.data) / "wild-dev"
    runs = [("default", d, a) for d, a in SETTINGS] + [(m, "blazeface", True) for m in args.model]
    rows = []
    for model, detector, align in runs:
        recognizer = Recognizer(model, detector=make_detector(detector), align=align)
        result = evaluate_images(recognizer, folder)
        rows.append({"model": model, "detector": detector, "align": align,
                     **{k: result[k] for k in ("images", "accuracy", "macro_recall", "no_face",
                                               "per_class")}})
        print(f"{model} {detector} align={align}: accuracy {result['accuracy']:.3f}, macro "
              f"recall {result['macro_recall']:.3f}, no face {result['no_face']:.1%}",
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wild_dev.json").write_text(json.dumps(rows, indent=2))
    lines = ["# wild-dev through the whole recognition path", "",
             f"{rows[0]['images']} labelled photos (`{folder.name}`), the largest face of each; a "
             f"photo with no face found counts as wrong. Host: {cpu()}.",
             "", "| model | detector | aligned | accuracy | macro recall | no face | "
             "neutral recall | disgust recall |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['detector']} | {'yes' if r['align'] else 'no'} | "
                     f"{r['accuracy']:.1%} | {r['macro_recall']:.3f} | {r['no_face']:.1%} | "
                     f"{r['per_class']['neutral']['recall']:.3f} | "
                     f"{r['per_class']['disgust']['recall']:.3f} |")
    (RESULTS / "wild_dev.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
