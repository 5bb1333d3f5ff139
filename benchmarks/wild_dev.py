"""The bundled models on labelled in-the-wild photos through the whole recognition path.

Runs what ``fercnn evaluate MODEL --images DIR`` runs, for each detector and alignment setting,
on wild-dev (validation only: never trained on), and writes
benchmarks/results/wild_dev.{json,md}. Extra exported models are scored on the default path
with each face's views (--model): one, with its mirror image (the default), ten. Accuracy is
also given apart for wild-dev's two kinds of photo: gray head-and-shoulders portraits and
colour crops that the face fills (its README), since their labels come from different people.
The bundled default and accurate models are scored with the photo reader that they blend in on
faces larger than FER-2013's (fercnn.recognition.photo_reader) and, with the mirror, without it.

    FERCNN_REAL_DATA=../shared/data python benchmarks/wild_dev.py [--model runs/x.onnx]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
from host import cpu_description

from fercnn.metrics import photo_metrics
from fercnn.recognition import Recognizer
from fercnn.recognition.evaluate import labelled_images, predict_labelled
from fercnn.recognition.recognizer import make_detector

RESULTS = Path(__file__).resolve().parent / "results"
# detector, aligned, views, photo reader (None: the model's own choice)
SETTINGS = (("blazeface", True, "mirror", None), ("blazeface", True, "mirror", False),
            ("blazeface", True, "none", None), ("blazeface", False, "mirror", None),
            ("haar", False, "mirror", None), ("blazeface", True, "ten", None))


def is_colour(path: Path) -> bool:
    image = cv2.imread(str(path))
    return bool((image[..., 0] != image[..., 1]).any() or (image[..., 1] != image[..., 2]).any())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("FERCNN_REAL_DATA", "../shared/data"))
    parser.add_argument("--model", action="append", default=[],
                        help="another exported model, scored with the default path")
    args = parser.parse_args()
    folder = Path(args.data) / "wild-dev"
    photos = labelled_images(folder)
    labels = np.array([label for _, label in photos])
    colour = np.array([is_colour(path) for path, _ in photos])
    runs = [("default", *setting) for setting in SETTINGS]
    for m in args.model:
        runs += [(m, "blazeface", True, tta, None) for tta in ("none", "mirror", "ten")]
        if Recognizer(m).photo_reader is not None:
            runs.append((m, "blazeface", True, "mirror", False))
    rows = []
    for model, detector, align, tta, reader in runs:
        recognizer = Recognizer(model, detector=make_detector(detector), align=align, tta=tta,
                                photo_reader=reader)
        predicted, _ = predict_labelled(recognizer, photos)
        result = photo_metrics(predicted, labels)
        reader = recognizer.photo_reader is not None
        rows.append({"model": model, "detector": detector, "align": align, "tta": tta,
                     "photo_reader": reader,
                     **{k: result[k] for k in ("images", "accuracy", "macro_recall", "no_face",
                                               "per_class")},
                     "gray_portraits_accuracy": float((predicted == labels)[~colour].mean()),
                     "colour_crops_accuracy": float((predicted == labels)[colour].mean())})
        print(f"{model} {detector} align={align} tta={tta} photo reader={reader}: "
              f"accuracy {result['accuracy']:.3f}, "
              f"macro recall {result['macro_recall']:.3f}, no face {result['no_face']:.1%}",
              flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "wild_dev.json").write_text(json.dumps(rows, indent=2))
    lines = ["# wild-dev through the whole recognition path", "",
             f"{rows[0]['images']} labelled photos (`{folder.name}`: {int((~colour).sum())} gray "
             f"portraits, {int(colour.sum())} colour face crops), the largest face of each; a "
             f"photo with no face found counts as wrong. Host: {cpu_description()}.",
             "", "| model | detector | aligned | views | photo reader | accuracy | macro recall | "
             "no face | neutral recall | disgust recall | gray portraits | colour crops |",
             "| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['detector']} | {'yes' if r['align'] else 'no'} | "
                     f"{r['tta']} | {'yes' if r['photo_reader'] else 'no'} | "
                     f"{r['accuracy']:.1%} | {r['macro_recall']:.3f} | {r['no_face']:.1%} | "
                     f"{r['per_class']['neutral']['recall']:.3f} | "
                     f"{r['per_class']['disgust']['recall']:.3f} | "
                     f"{r['gray_portraits_accuracy']:.1%} | {r['colour_crops_accuracy']:.1%} |")
    (RESULTS / "wild_dev.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
