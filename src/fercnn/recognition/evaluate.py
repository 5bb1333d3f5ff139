"""Evaluation on the recognition side, no torch: exported (ONNX) models on FER-2013's splits,
and labelled photos through the whole path (detector, alignment, model)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from ..data.folders import list_class_folders
from ..errors import FercnnError
from ..labels import EMOTIONS
from ..metrics import NO_FACE, photo_metrics
from .recognizer import FaceResult, Recognizer


def onnx_probabilities(model: str | Path, images: np.ndarray, tta: bool | str = False
                       ) -> tuple[np.ndarray, dict]:
    """Probabilities of an exported model (``default``: the embedded one) for 48x48 faces,
    which the photo reader never reads, and its name and classes."""
    recognizer = Recognizer(model, tta=tta, photo_reader=False)
    probabilities = np.concatenate([recognizer.predict_batch(images[i:i + 256])
                                    for i in range(0, len(images), 256)])
    return probabilities, {"model": recognizer.metadata.get("model"),
                           "classes": recognizer.classes}


def labelled_images(folder: str | Path) -> list[tuple[Path, int]]:
    """(photo, class index) from ``folder/labels.csv`` (``path,label``, paths relative to the
    folder) or, without it, from class folders (``folder/happy/*.jpg``, names as in
    EMOTIONS, matched case-insensitively)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FercnnError(f"{folder}: no such folder")
    listing = folder / "labels.csv"
    if listing.is_file():
        return _from_listing(listing)
    if not any(p.is_dir() for p in folder.iterdir()):
        raise FercnnError(f"{folder}: neither a labels.csv nor class folders "
                          f"({', '.join(EMOTIONS)})")
    return list_class_folders(folder)


def _from_listing(listing: Path) -> list[tuple[Path, int]]:
    with open(listing, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"path", "label"} <= set(rows[0]):
        raise FercnnError(f"{listing}: expected the columns path,label")
    photos = []
    for line, row in enumerate(rows, start=2):
        label = (row["label"] or "").strip().lower()
        if label not in EMOTIONS:
            raise FercnnError(f"{listing}: line {line}: unknown label {row['label']!r} "
                              f"(one of {', '.join(EMOTIONS)})")
        photos.append((listing.parent / row["path"], EMOTIONS.index(label)))
    return photos


def largest_faces(recognizer: Recognizer, photos: list[tuple[Path, int]],
                  detect: bool = True) -> list[FaceResult | None]:
    """Each photo's largest face as the whole path reads it, the face a photo is scored by
    (None where no face is found)."""
    largest = []
    for path, _ in photos:
        faces = recognizer.predict(path, detect=detect)
        largest.append(max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None)
    return largest


def predict_labelled(recognizer: Recognizer, photos: list[tuple[Path, int]],
                     detect: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The class index the whole path gives each photo, its largest face's emotion or
    ``NO_FACE`` where no face is found, and that emotion's probability (NaN without a face)."""
    predicted = np.full(len(photos), NO_FACE)
    confidence = np.full(len(photos), np.nan)
    for i, face in enumerate(largest_faces(recognizer, photos, detect)):
        if face is not None:
            predicted[i] = recognizer.classes.index(face.emotion)
            confidence[i] = face.probabilities[face.emotion]
    return predicted, confidence


def write_predictions(photos: list[tuple[Path, int]], predicted: np.ndarray,
                      confidence: np.ndarray, classes: tuple[str, ...], folder: Path,
                      out: Path) -> None:
    """One row per photo (its path from ``folder``, label, what the path said, its
    probability), so the mistakes behind the figures can be looked at."""
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "predicted", "probability", "correct"])
        for (path, label), said, p in zip(photos, predicted, confidence, strict=True):
            name = "no face" if said == NO_FACE else classes[said]
            shown = Path(os.path.relpath(path, folder)).as_posix()
            writer.writerow([shown, EMOTIONS[label], name,
                             "" if np.isnan(p) else f"{p:.4f}", int(said == label)])


def evaluate_images(recognizer: Recognizer, folder: str | Path, detect: bool = True,
                    out: str | Path | None = None) -> dict:
    """Labelled photos scored through the whole recognition path (detector, alignment,
    model): the largest face found in each photo is its prediction, and a photo with none
    counts as wrong. With ``out``, the metrics JSON, a confusion matrix PNG and each photo's
    prediction (``predictions-images.csv``) go there."""
    photos = labelled_images(folder)
    if not photos:
        raise FercnnError(f"{folder}: no labelled images")
    predicted, confidence = predict_labelled(recognizer, photos, detect)
    labels = np.array([label for _, label in photos])
    result = {"model": recognizer.metadata.get("model", str(recognizer.path)),
              "images_folder": str(folder), "tta": recognizer.tta,
              "detector": type(recognizer.detector).__name__ if detect else None,
              "align": recognizer.align,
              "photo_reader": None if recognizer.photo_reader is None else
              {"weight": recognizer.photo_reader.weight,
               "full_at": recognizer.photo_reader.full_at},
              "prior": recognizer.prior,
              **photo_metrics(predicted, labels)}
    if out is not None:
        from ..plots import confusion_matrix

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics-images.json").write_text(json.dumps(result, indent=2))
        write_predictions(photos, predicted, confidence, recognizer.classes, Path(folder),
                          out / "predictions-images.csv")
        confusion_matrix(np.array(result["confusion"]), out / "confusion-images.png",
                         title=f"{Path(folder).name}: accuracy {result['accuracy']:.1%}, "
                         f"macro recall {result['macro_recall']:.3f}",
                         columns=result["confusion_columns"])
    return result
