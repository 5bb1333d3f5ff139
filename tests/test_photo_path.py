"""The photo path's own steps: alignment turns a tilted face upright, and ``evaluate --images``
scores labelled photos through detector, alignment and model."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from fercnn.errors import FercnnError
from fercnn.recognition import DEMO_PHOTO, Face, Recognizer, load_image, to_gray
from fercnn.recognition.crop import align_face, eye_angle
from fercnn.recognition.evaluate import evaluate_images, labelled_images

from .conftest import assert_one_line_error, run_cli


def two_eyes(angle: float) -> tuple[np.ndarray, Face]:
    """A bright image with two dark eyes 60 px apart, their line turned by ``angle`` degrees
    about (200, 200), and the Face a detector would report for it."""
    image = np.full((400, 400), 220, np.uint8)
    t = np.radians(angle)
    offsets = np.array([[-30.0, 0.0], [30.0, 0.0]])
    rotation = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    eyes = np.array([200.0, 190.0]) + offsets @ rotation.T
    for x, y in eyes:
        cv2.circle(image, (int(round(x)), int(round(y))), 8, 0, -1)
    return image, Face((150, 160, 100, 100), 0.9, eyes.astype(np.float32))


def blob_centres(crop: np.ndarray) -> np.ndarray:
    """Centroids of the two dark blobs, left to right."""
    count, _, _, centres = cv2.connectedComponentsWithStats((crop < 110).astype(np.uint8))
    assert count == 3, count  # background + two eyes
    return centres[1:][np.argsort(centres[1:, 0])]


@pytest.mark.parametrize("angle", [-30.0, 20.0])
def test_alignment_turns_a_tilted_face_upright(angle):
    image, face = two_eyes(angle)
    assert eye_angle(face) == pytest.approx(angle, abs=0.5)
    aligned = blob_centres(align_face(image, face))
    assert abs(aligned[0, 1] - aligned[1, 1]) < 1.0  # eyes level
    tilted = blob_centres(align_face(image, face, rotate=False))
    assert abs(tilted[0, 1] - tilted[1, 1]) > 5.0  # without rotation they are not


def test_alignment_of_a_rotated_photo_matches_the_upright_one():
    """The bundled portrait turned by 25 degrees, detected and aligned, gives nearly the crop
    of the upright portrait; left unrotated it differs much more."""
    photo = load_image(DEMO_PHOTO)
    recognizer = Recognizer()
    detector = recognizer._detector()
    upright = align_face(to_gray(photo), detector.detect(photo)[0])
    turn = cv2.getRotationMatrix2D((256, 256), 25, 1.0)
    turned = cv2.warpAffine(photo, turn, (512, 512), borderMode=cv2.BORDER_REPLICATE)
    face = detector.detect(turned)[0]
    assert eye_angle(face) < -15  # the detector's eye keypoints see the tilt
    aligned = align_face(to_gray(turned), face)
    kept = align_face(to_gray(turned), face, rotate=False)
    gap = np.abs(aligned.astype(int) - upright).mean()
    assert gap < 0.7 * np.abs(kept.astype(int) - upright).mean()


@pytest.fixture
def labelled(tmp_path):
    """The portrait labelled happy (right) and sad (wrong), and a blank image (no face)."""
    cv2.imwrite(str(tmp_path / "blank.png"), np.full((120, 120), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "portrait.jpg"), load_image(DEMO_PHOTO))
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerows([("path", "label"), ("portrait.jpg", "happy"),
                          ("portrait.jpg", "sad"), ("blank.png", "neutral")])
    return tmp_path


def test_evaluate_images_scores_a_tiny_labelled_folder(labelled, tmp_path):
    result = evaluate_images(Recognizer(), labelled, out=tmp_path / "report")
    assert result["images"] == 3
    assert result["accuracy"] == pytest.approx(1 / 3)
    assert result["no_face"] == pytest.approx(1 / 3)
    assert result["per_class"]["happy"]["recall"] == 1.0
    assert result["per_class"]["sad"]["recall"] == 0.0
    assert result["macro_recall"] == pytest.approx(1 / 3)  # happy, sad, neutral present
    happy, sad, neutral = (result["confusion"][i] for i in (3, 4, 6))
    assert happy[3] == 1 and sad[3] == 1 and neutral[7] == 1  # column 7: no face
    assert (tmp_path / "report" / "confusion-images.png").is_file()
    saved = json.loads((tmp_path / "report" / "metrics-images.json").read_text())
    assert saved["accuracy"] == result["accuracy"]
    with open(tmp_path / "report" / "predictions-images.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["path"], r["label"], r["predicted"], r["correct"]) for r in rows] == [
        ("portrait.jpg", "happy", "happy", "1"), ("portrait.jpg", "sad", "happy", "0"),
        ("blank.png", "neutral", "no face", "0")]
    assert float(rows[0]["probability"]) > 0.5 and rows[2]["probability"] == ""


def test_class_folders_work_like_a_labels_file(tmp_path):
    (tmp_path / "Happy").mkdir()
    cv2.imwrite(str(tmp_path / "Happy" / "a.png"), load_image(DEMO_PHOTO))
    assert labelled_images(tmp_path) == [(tmp_path / "Happy" / "a.png", 3)]
    with pytest.raises(FercnnError, match="neither a labels.csv nor class folders"):
        labelled_images(tmp_path / "Happy")


def test_the_cli_scores_photos_and_rejects_a_bad_label(labelled):
    result = run_cli("evaluate", "default", "--images", labelled, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] == pytest.approx(1 / 3)
    with open(labelled / "labels.csv", "a") as f:
        f.write("blank.png,bored\n")
    bad = run_cli("evaluate", "default", "--images", labelled)
    assert_one_line_error(bad, "line 5: unknown label 'bored'")
