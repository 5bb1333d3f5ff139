"""Reading photos for the mix of expressions in photos (``--prior photos``) against FER-2013's
own mix, on wild-dev, and whether the change holds on photos it was not measured on.

Each bundled model reads wild-dev through the whole recognition path, as
``fercnn evaluate MODEL --images`` does: with ``--prior fer2013`` (the default: the model as
trained), with ``--prior photos`` (recognition/priors.py: its probabilities calibrated on
PublicTest, then moved to AffectNet's published class counts; nothing is tuned on photos), and
with ``photos`` but not calibrated (as fercnn read until the calibration came). Reported per
model: accuracy, macro recall, gray portraits and colour crops apart, recall per class and how
often each class is answered; and, resampling the photos 1,000 times (paired bootstrap), the
5th-95th percentiles of the change in accuracy and macro recall, from ``fer2013`` to
``photos`` and from uncalibrated to calibrated. For the default, also the blend moved instead
of the model's reading (the photo reader's share moved too, without the calibration), which
fercnn does not do: the reader never learnt FER-2013's mix. Writes
benchmarks/results/prior_choice.{json,md}.

    FERCNN_REAL_DATA=../shared/data python benchmarks/prior_choice.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from host import cpu_description, write_results
from wild_dev import is_colour

from fercnn.labels import EMOTIONS
from fercnn.metrics import NO_FACE, photo_metrics
from fercnn.recognition import Recognizer
from fercnn.recognition.evaluate import labelled_images, largest_faces
from fercnn.recognition.priors import PRIORS, prior_weights, shift_prior

MODELS = ("default", "accurate", "tiny")
RESAMPLES = 1000


def read_photos(recognizer: Recognizer, photos: list) -> np.ndarray:
    """The probabilities of each photo's largest face, as ``evaluate --images`` takes it
    (NaN where no face is found)."""
    return np.array([[face.probabilities[e] for e in EMOTIONS] if face else
                     [np.nan] * len(EMOTIONS) for face in largest_faces(recognizer, photos)])


def answers(read: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(read[:, 0]), NO_FACE, np.nan_to_num(read).argmax(1))


def summary(predicted: np.ndarray, labels: np.ndarray, colour: np.ndarray) -> dict:
    metrics = photo_metrics(predicted, labels)
    right = predicted == labels
    return {"accuracy": metrics["accuracy"], "macro_recall": metrics["macro_recall"],
            "gray_portraits": float(right[~colour].mean()),
            "colour_crops": float(right[colour].mean()),
            "recall": {e: m["recall"] for e, m in metrics["per_class"].items()},
            "answered": {e: int((predicted == i).sum()) for i, e in enumerate(EMOTIONS)}}


def bootstrap_change(before: np.ndarray, after: np.ndarray, labels: np.ndarray,
                     seed: int = 0) -> dict:
    """5th, 50th and 95th percentiles of the change in accuracy and macro recall over photo
    sets drawn with replacement from these (the same draw for both readings)."""
    rng = np.random.default_rng(seed)
    changes = []
    for _ in range(RESAMPLES):
        i = rng.integers(0, len(labels), len(labels))
        a, b = photo_metrics(before[i], labels[i]), photo_metrics(after[i], labels[i])
        changes.append((b["accuracy"] - a["accuracy"], b["macro_recall"] - a["macro_recall"]))
    changes = np.array(changes)
    return {name: [float(np.percentile(changes[:, k], q)) for q in (5, 50, 95)]
            for k, name in enumerate(("accuracy", "macro_recall"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("FERCNN_REAL_DATA", "../shared/data"))
    args = parser.parse_args()
    photos = labelled_images(Path(args.data) / "wild-dev")
    labels = np.array([label for _, label in photos])
    colour = np.array([is_colour(path) for path, _ in photos])
    rows = []
    for model in MODELS:
        read = {prior: read_photos(Recognizer(model, prior=prior), photos) for prior in PRIORS}
        uncalibrated = Recognizer(model, prior="photos")
        uncalibrated.calibration = None
        read["photos, not calibrated"] = read_photos(uncalibrated, photos)
        if model == "default":
            read["photos, blend moved"] = shift_prior(read["fer2013"],
                                                      prior_weights("photos", EMOTIONS))
        predicted = {prior: answers(r) for prior, r in read.items()}
        for prior, said in predicted.items():
            row = {"model": model, "prior": prior, **summary(said, labels, colour)}
            if prior == "photos":
                row["change"] = bootstrap_change(predicted["fer2013"], said, labels)
            if prior == "photos, not calibrated":
                row["change_from"] = "photos"
                row["change"] = bootstrap_change(said, predicted["photos"], labels)
            rows.append(row)
            print(model, prior, f"accuracy {row['accuracy']:.3f} macro recall "
                  f"{row['macro_recall']:.3f}", flush=True)
    result = {"cpu": cpu_description(), "photos": len(labels), "resamples": RESAMPLES,
              "rows": rows}
    write_results("prior_choice", None, result, markdown(result))
    print("\n".join(markdown(result)))


def markdown(result: dict) -> list[str]:
    lines = ["# Reading photos for the mix of expressions in photos (`--prior photos`)", "",
             f"wild-dev, {result['photos']} photos through the whole recognition path (the "
             "bundled models with their defaults: BlazeFace, alignment, the mirror, the photo "
             "reader for default and accurate); the largest face of each, no face counting as "
             f"wrong. Host: {result['cpu']}.", "",
             "The changes (median and 5-95% of 1,000 paired resamplings of the photos) are from "
             "`fer2013` to `photos` on the `photos` rows, and from `photos, not calibrated` to "
             "`photos` (the calibration's own gain) on the `photos, not calibrated` rows.", "",
             "| model | prior | accuracy | macro recall | gray portraits | colour crops | "
             "change in accuracy (5-95%) | change in macro recall (5-95%) |",
             "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for r in result["rows"]:
        change = r.get("change")
        spans = ["" if change is None else
                 f"{change[k][1]:+.3f} ({change[k][0]:+.3f} to {change[k][2]:+.3f})"
                 for k in ("accuracy", "macro_recall")]
        lines.append(f"| {r['model']} | {r['prior']} | {r['accuracy']:.1%} | "
                     f"{r['macro_recall']:.3f} | {r['gray_portraits']:.1%} | "
                     f"{r['colour_crops']:.1%} | {spans[0]} | {spans[1]} |")
    lines += ["", "Recall per class, and how many photos each class was answered for "
              "(recall / answered):", "",
              "| model | prior | " + " | ".join(EMOTIONS) + " |",
              "| --- | --- | " + " | ".join("---:" for _ in EMOTIONS) + " |"]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | {r['prior']} | " + " | ".join(
            f"{r['recall'][e]:.2f} / {r['answered'][e]}" for e in EMOTIONS) + " |")
    return lines


if __name__ == "__main__":
    main()
