"""How the photo reader's settings were chosen on wild-dev, and whether the choice holds on
photos it was not chosen on.

Each wild-dev photo's largest face is found and read once by the default model (48x48 gray,
with its mirror) and once by the photo reader (112x112 colour, with its mirror), as
``fercnn evaluate default --images`` reads it. The two readings are then mixed under every
setting of a small grid: the reader's largest share, the face size in pixels where that share
is reached, and whether fear and disgust keep the model's probabilities (as shipped) or are
mixed like the rest. To see whether the choice generalises, the grid is searched on a random
half of the photos (the setting with the best accuracy plus macro recall) and scored on the
other half, against the model alone there, for 200 random halves. The reader's framing is
varied too, at the shipped share: the box and a tenth, a fifth (shipped) or three tenths more,
as the detector gives it (shipped) or turned upright by the eyes. Writes
benchmarks/results/photo_reader_choice.{json,md}.

    FERCNN_REAL_DATA=../shared/data python benchmarks/photo_reader_choice.py
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from host import cpu_description, write_results

from fercnn.metrics import NO_FACE, photo_metrics
from fercnn.recognition import Recognizer
from fercnn.recognition.crop import frame_face
from fercnn.recognition.evaluate import labelled_images
from fercnn.recognition.images import load_image
from fercnn.recognition.photo_reader import (
    BOX_CENTRE,
    BOX_WIDTH,
    FULL_AT,
    INPUT_SIZE,
    WEIGHT,
    blend,
    size_share,
)

WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6)
FULL_ATS = (64, 96, 128)
HALVES = 200
SHIPPED_FRAMING = (round(INPUT_SIZE / BOX_WIDTH, 2), False)  # the box and a fifth, as given
FRAMINGS = [SHIPPED_FRAMING] + [(m, u) for m in (1.1, 1.2, 1.3) for u in (False, True)
                                if (m, u) != SHIPPED_FRAMING]


def readings(folder: Path, framings: list[tuple[float, bool]]
             ) -> tuple[np.ndarray, np.ndarray, dict, np.ndarray]:
    """Labels, the model's probabilities of each photo's largest face, the reader's under
    each framing (margin, upright), and that face's size in pixels (0 where none is found)."""
    photos = labelled_images(folder)
    recognizer = Recognizer(photo_reader=True)
    reader = recognizer.photo_reader
    labels = np.array([label for _, label in photos])
    model = np.zeros((len(photos), 7))
    photo = {framing: np.zeros((len(photos), 7)) for framing in framings}
    side = np.zeros(len(photos))
    for i, (path, _) in enumerate(photos):
        image = load_image(path)
        gray, faces = recognizer.faces(image)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        colour = image if image.ndim == 3 else np.repeat(gray[..., None], 3, 2)  # 8-bit files
        model[i] = recognizer.predict_batch(recognizer.crop(gray, face))[0]
        for (margin, upright), read in photo.items():
            crop = frame_face(colour, face, INPUT_SIZE, INPUT_SIZE / margin, BOX_CENTRE, upright)
            read[i] = reader.predict(np.ascontiguousarray(crop[None, :, :, ::-1]))[0]
        side[i] = max(face.box[2], face.box[3])
    return labels, model, photo, side


def mixed(model: np.ndarray, photo: np.ndarray, side: np.ndarray, weight: float,
          full_at: float, keep: bool) -> np.ndarray:
    shares = size_share(side, weight, full_at)
    if keep:
        return blend(model, photo, shares)
    return (1 - shares[:, None]) * model + shares[:, None] * photo


def scores(probabilities: np.ndarray, labels: np.ndarray,
           found: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro recall, a photo without a face counting as wrong."""
    metrics = photo_metrics(np.where(found, probabilities.argmax(1), NO_FACE), labels)
    return metrics["accuracy"], metrics["macro_recall"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("FERCNN_REAL_DATA", "../shared/data"))
    args = parser.parse_args()
    labels, model, framed, side = readings(Path(args.data) / "wild-dev", FRAMINGS)
    photo, found = framed[SHIPPED_FRAMING], side > 0
    framing_rows = [{"margin": m, "upright": u, **dict(zip(
        ("accuracy", "macro_recall"),
        scores(mixed(model, framed[(m, u)], side, WEIGHT, FULL_AT, True), labels, found),
        strict=True))} for m, u in FRAMINGS]
    grid = {(w, f, k): mixed(model, photo, side, w, f, k)
            for w in WEIGHTS for f in FULL_ATS for k in (True, False)}
    alone = scores(model, labels, found)
    rows = [{"weight": w, "full_at": f, "fear_and_disgust_kept": k,
             **dict(zip(("accuracy", "macro_recall"), scores(p, labels, found), strict=True))}
            for (w, f, k), p in grid.items()]
    rng = np.random.default_rng(0)
    gains = []
    for _ in range(HALVES):
        order = rng.permutation(len(labels))
        pick, held = order[:len(order) // 2], order[len(order) // 2:]
        best = max(grid, key=lambda g: sum(scores(grid[g][pick], labels[pick], found[pick])))
        chosen = scores(grid[best][held], labels[held], found[held])
        base = scores(model[held], labels[held], found[held])
        gains.append((chosen[0] - base[0], chosen[1] - base[1]))
    gains = np.array(gains)
    summary = {name: {"mean": float(gains[:, i].mean()),
                      "p5": float(np.percentile(gains[:, i], 5)),
                      "p95": float(np.percentile(gains[:, i], 95))}
               for i, name in enumerate(("accuracy", "macro_recall"))}
    result = {"cpu": cpu_description(), "photos": len(labels), "model_alone":
              dict(zip(("accuracy", "macro_recall"), alone, strict=True)), "grid": rows,
              "framings": framing_rows,
              "shipped": {"weight": WEIGHT, "full_at": FULL_AT, "fear_and_disgust_kept": True},
              "held_out_gain": summary, "halves": HALVES}
    write_results("photo_reader_choice", None, result, markdown(result))
    print("\n".join(markdown(result)))


def markdown(result: dict) -> list[str]:
    alone, held = result["model_alone"], result["held_out_gain"]
    lines = ["# The photo reader's settings on wild-dev", "",
             f"{result['photos']} photos, the largest face of each (no face: wrong), each "
             f"reading with its mirror; the default model alone: accuracy "
             f"{alone['accuracy']:.1%}, macro recall {alone['macro_recall']:.3f}. "
             f"Shipped: share {WEIGHT} from {FULL_AT} px, fear and disgust kept. Host: "
             f"{result['cpu']}.", "",
             f"Chosen on a random half and scored on the other ({result['halves']} halves), "
             f"against the model alone on that half: accuracy "
             f"{held['accuracy']['mean']:+.3f} (5th-95th percentile "
             f"{held['accuracy']['p5']:+.3f} to {held['accuracy']['p95']:+.3f}), macro recall "
             f"{held['macro_recall']['mean']:+.3f} ({held['macro_recall']['p5']:+.3f} to "
             f"{held['macro_recall']['p95']:+.3f}).", "",
             "| share | full at px | fear and disgust | accuracy | macro recall |",
             "| ---: | ---: | --- | ---: | ---: |"]
    for r in result["grid"]:
        lines.append(f"| {r['weight']} | {r['full_at']} | "
                     f"{'kept' if r['fear_and_disgust_kept'] else 'mixed'} | "
                     f"{r['accuracy']:.1%} | {r['macro_recall']:.3f} |")
    lines += ["", "The reader's framing, at the shipped share:", "",
              "| the box and | turned upright | accuracy | macro recall |",
              "| ---: | --- | ---: | ---: |"]
    for r in result["framings"]:
        lines.append(f"| {r['margin'] - 1:.0%} | {'yes' if r['upright'] else 'no'} | "
                     f"{r['accuracy']:.1%} | {r['macro_recall']:.3f} |")
    return lines


if __name__ == "__main__":
    main()
