"""Saliency maps: occlusion of exported models (no torch), Grad-CAM of checkpoints, the maps
carried back onto the photo, and two sanity checks that the maps mean something."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from fercnn.cli import main
from fercnn.data import load_dataset
from fercnn.explain import explain_photo, make_saliency, write_mistakes
from fercnn.models import create_model
from fercnn.recognition import DEMO_PHOTO, Recognizer
from fercnn.recognition.crop import align_face, crop_face, crop_to_photo
from fercnn.recognition.faces import Face
from fercnn.recognition.occlusion import occlusion_map
from fercnn.training.checkpoint import load_checkpoint, model_from_checkpoint
from fercnn.training.config import config_from_dict
from fercnn.training.loop import train
from fercnn.training.saliency import gradcam_maps
from fercnn.tta import tta_views

from .conftest import assert_one_line_error, run_cli, run_cli_without


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, synthetic_csv) -> Path:
    """A shallow network trained for a few seconds on the synthetic faces, whose class is a
    bright band of rows: what it has learnt has a known place in the face."""
    out = tmp_path_factory.mktemp("explain") / "run"
    config = config_from_dict({"name": "tiny", "model": "shallow", "epochs": 3,
                               "batch_size": 16, "data": str(synthetic_csv)})
    assert train(config, out)["best_val_acc"] > 0.8
    return out


@pytest.fixture(scope="module")
def astronaut_face() -> np.ndarray:
    recognizer = Recognizer()
    gray, faces = recognizer.faces(DEMO_PHOTO)
    return recognizer.crop(gray, faces[0])


def band_share(maps: np.ndarray, labels: np.ndarray) -> float:
    """How much more of each map lies on its face's class band than on the face on average."""
    return float(np.mean([m[label * 6:label * 6 + 6].mean() / max(m.mean(), 1e-9)
                          for m, label in zip(maps, labels, strict=True)]))


def test_explain_on_the_bundled_model_writes_occlusion_maps_without_torch(tmp_path):
    result = run_cli_without(("torch", "captum"), "explain", "default", str(DEMO_PHOTO),
                             "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "occlusion map of happy" in result.stdout
    for name in ("astronaut-saliency.png", "astronaut-face1.png"):
        written = cv2.imread(str(tmp_path / name))
        assert written is not None and written.std() > 0, name
    assert cv2.imread(str(tmp_path / "astronaut-saliency.png")).shape[:2] == (512, 512)


def test_occlusion_maps_cover_the_crop_and_land_on_the_face_in_the_photo():
    finder = Recognizer()
    (face,) = explain_photo(DEMO_PHOTO, finder, make_saliency("default", "occlusion"))
    assert face.emotion == face.target == "happy"
    assert face.crop.shape == face.crop_map.shape == (48, 48)
    assert face.crop_map.max() == pytest.approx(1.0) and face.crop_map.min() >= 0
    assert face.photo_map.shape == face.coverage.shape == (512, 512)
    assert face.photo_map.max() > 0.9  # the crop's peak survives the warp
    outside = face.coverage == 0
    assert outside.mean() > 0.8 and face.photo_map[outside].max() == 0
    x, y, w, h = face.box  # the crop is a little larger than the box, not elsewhere
    rows, cols = np.nonzero(face.coverage > 0.5)
    assert abs(rows.mean() - (y + h / 2)) < h / 3 and abs(cols.mean() - (x + w / 2)) < w / 3


def test_occlusion_sends_all_views_of_a_face_in_one_model_call(astronaut_face):
    recognizer, batches = Recognizer(tta="none"), []

    def predict(faces: np.ndarray) -> np.ndarray:
        batches.append(len(faces))
        return recognizer.predict_batch(faces)

    saliency, probabilities = occlusion_map(predict, astronaut_face, target=4)
    assert len(batches) == 1 and batches[0] > 50
    assert probabilities.argmax() == 3 and saliency.shape == (48, 48)


def test_crop_to_photo_maps_crop_pixels_onto_the_photo_pixels_they_came_from():
    """Warping the photo back through the matrix gives the crop the Recognizer made."""
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (120, 160)).astype(np.uint8), (5, 5), 0)
    keypoints = np.array([[70.0, 50.0], [92.0, 56.0]])  # eyes, tilted by 15 degrees
    for face, crop in ((Face((60, 40, 40, 40), keypoints=keypoints),
                        align_face(photo, Face((60, 40, 40, 40), keypoints=keypoints))),
                       (Face((60, 40, 40, 40)), crop_face(photo, (60, 40, 40, 40)))):
        back = cv2.warpAffine(photo, crop_to_photo(face), (48, 48),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        assert np.abs(back.astype(int) - crop).mean() < 1.0


def test_explain_a_checkpoint_writes_gradcam_maps_for_the_class_asked(tmp_path, trained_run,
                                                                      capsys):
    code = main(["explain", str(trained_run), str(DEMO_PHOTO), "--out", str(tmp_path),
                 "--target", "sad"])
    assert code == 0
    assert "gradcam map of sad" in capsys.readouterr().out
    assert (tmp_path / "astronaut-saliency.png").exists()
    assert (tmp_path / "astronaut-face1.png").exists()
    saliency = make_saliency(str(trained_run), "gradcam")
    (face,) = explain_photo(DEMO_PHOTO, Recognizer(), saliency, target=4)
    assert face.target == "sad" and face.crop_map.shape == (48, 48)
    assert face.photo_map.shape == (512, 512) and 0 <= face.crop_map.min() <= 1


def test_gradcam_of_an_exported_model_is_a_one_line_error(tmp_path):
    result = run_cli("explain", "default", DEMO_PHOTO, "--method", "gradcam", "--out", tmp_path)
    assert_one_line_error(result, "Grad-CAM", "occlusion")


def test_gradcam_maps_change_when_the_weights_are_randomised(trained_run, synthetic_csv):
    """Adebayo et al. (2018): a map that survives randomising the weights explains the image,
    not the model. The trained network's maps find the class band; a randomised copy's maps
    neither resemble them (rank correlation) nor find the band."""
    checkpoint = load_checkpoint(trained_run)
    part = load_dataset(str(synthetic_csv)).split("PublicTest")
    faces, labels = part.images[:21], part.labels[:21]
    trained, probabilities = gradcam_maps(model_from_checkpoint(checkpoint), faces)
    assert (probabilities.argmax(1) == labels).mean() > 0.8
    torch.manual_seed(123)
    randomised, _ = gradcam_maps(create_model("shallow").eval(), faces, labels)
    rho = [spearmanr(a.ravel(), b.ravel())[0] if b.std() > 0 else 0.0
           for a, b in zip(trained, randomised, strict=True)]
    assert np.mean(rho) < 0.4, rho
    assert band_share(trained, labels) > 1.5
    assert band_share(trained, labels) > band_share(randomised, labels) + 0.3


def test_occluding_the_most_salient_region_lowers_the_probability_more_than_a_random_one(
        astronaut_face):
    """The faithfulness check: the bundled model, ten views of the photo's face (shifts and
    mirror images), the map's 12x12 peak against 20 random 12x12 squares per face."""
    recognizer, rng, side = Recognizer(tta="none"), np.random.default_rng(0), 12
    salient, random = [], []
    for face in [v[0] for v in tta_views(astronaut_face[None])]:
        saliency, probabilities = occlusion_map(recognizer.predict_batch, face)
        target = int(probabilities.argmax())
        windows = np.lib.stride_tricks.sliding_window_view(saliency, (side, side))
        peak = np.unravel_index(windows.mean(axis=(2, 3)).argmax(), windows.shape[:2])
        corners = [peak, *rng.integers(0, 48 - side + 1, (20, 2))]
        occluded = np.repeat(face[None], len(corners), axis=0)
        for view, (y, x) in zip(occluded, corners, strict=True):
            view[y:y + side, x:x + side] = round(float(face.mean()))
        drops = probabilities[target] - recognizer.predict_batch(occluded)[:, target]
        salient.append(drops[0])
        random.append(drops[1:].mean())
    assert np.mean(salient) > 0
    assert np.mean(salient) > np.mean(random) + 0.003, (salient, random)


def test_evaluate_out_adds_a_grid_of_the_most_confident_mistakes(tmp_path, synthetic_csv,
                                                                 trained_run):
    from fercnn.evaluate import evaluate

    evaluate(["default"], data=str(synthetic_csv), split="PublicTest", out=tmp_path)
    grid = cv2.imread(str(tmp_path / "mistakes-PublicTest.png"))
    assert grid is not None and grid.shape[0] > 4 * 48 * 4  # four rows of 16 faces
    # a checkpoint's grid: its Grad-CAM maps, here for labels it did not give
    part = load_dataset(str(synthetic_csv)).split("PublicTest")
    wrong = np.roll(np.eye(7)[part.labels], 1, axis=1)
    written = write_mistakes(str(trained_run), load_checkpoint(trained_run), part.images,
                             part.labels, wrong, tmp_path / "checkpoint.png", count=5)
    assert written is not None and cv2.imread(str(written)).shape[1] > 4 * 48 * 4
