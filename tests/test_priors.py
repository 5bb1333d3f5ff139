"""Reading faces for the mix of expressions in photos (``prior="photos"``): the model's
probabilities (calibrated, test_calibration.py) moved from FER-2013's Training mix by each
class's share ratio, before the photo reader is blended in; FER-2013's own mix changes
nothing."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fercnn.errors import FercnnError
from fercnn.labels import EMOTIONS
from fercnn.recognition import DEMO_PHOTO, Recognizer
from fercnn.recognition.batch import recognize_paths
from fercnn.recognition.priors import AFFECTNET, FER2013_TRAINING, prior_weights, shift_prior

from .conftest import assert_one_line_error, run_cli

FEAR, HAPPY = EMOTIONS.index("fear"), EMOTIONS.index("happy")


def shares(counts: dict[str, int], classes=EMOTIONS) -> np.ndarray:
    values = np.array([counts[c] for c in classes], dtype=float)
    return values / values.sum()


def demo_face_48() -> np.ndarray:
    """The bundled portrait's face at FER-2013's size, which the photo reader never reads."""
    return cv2.resize(cv2.imread(str(DEMO_PHOTO), cv2.IMREAD_GRAYSCALE)[67:175, 172:280],
                      (48, 48), interpolation=cv2.INTER_AREA)


def test_fer2013s_own_mix_changes_nothing():
    assert prior_weights("fer2013", EMOTIONS) is None
    p = np.random.default_rng(0).dirichlet(np.ones(7), size=4)
    assert shift_prior(p, None) is p


def test_the_photos_prior_scales_each_class_by_its_share_ratio_and_sums_to_one():
    ratio = shares(AFFECTNET) / shares(FER2013_TRAINING)
    uniform = np.full((1, 7), 1 / 7)
    moved = shift_prior(uniform, prior_weights("photos", EMOTIONS))
    assert moved.sum() == pytest.approx(1.0)
    assert moved[0] == pytest.approx(ratio / ratio.sum(), rel=1e-6)
    assert moved[0, HAPPY] > 1 / 7 > moved[0, FEAR]  # photos: more smiles, far less fear
    # a model listing its classes in another order gets the same factors, in its order
    reordered = tuple(reversed(EMOTIONS))
    assert prior_weights("photos", reordered) == pytest.approx(ratio[::-1], rel=1e-6)


def test_an_unknown_prior_or_class_is_a_one_line_error():
    with pytest.raises(FercnnError, match="unknown prior 'crowds'") as error:
        Recognizer(prior="crowds")
    assert "\n" not in str(error.value)
    with pytest.raises(FercnnError, match="no prior for the classes contempt"):
        prior_weights("photos", (*EMOTIONS, "contempt"))


def test_a_face_read_for_photos_is_the_models_reading_calibrated_and_moved_by_the_prior():
    face = demo_face_48()
    as_trained = Recognizer(photo_reader=False).predict(face, detect=False)[0]
    recognizer = Recognizer(photo_reader=False, prior="photos")
    for_photos = recognizer.predict(face, detect=False)[0]
    raw = np.array([as_trained.probabilities[e] for e in EMOTIONS])
    weights = prior_weights("photos", EMOTIONS)
    expected = shift_prior(raw, weights, recognizer.calibration)
    assert [for_photos.probabilities[e] for e in EMOTIONS] == pytest.approx(expected, abs=1e-6)
    # the bundled model's calibration (test_calibration.py) makes a difference of its own
    assert expected != pytest.approx(shift_prior(raw, weights), abs=1e-3)


def test_the_prior_moves_the_models_reading_before_the_photo_reader_is_blended_in():
    # fear is the model's alone in the blend, so with the reader it must be the moved value
    alone = Recognizer(photo_reader=False, prior="photos").predict(str(DEMO_PHOTO))[0]
    blended = Recognizer(prior="photos").predict(str(DEMO_PHOTO))[0]
    as_trained = Recognizer().predict(str(DEMO_PHOTO))[0]
    assert blended.probabilities["fear"] == pytest.approx(alone.probabilities["fear"], abs=1e-6)
    assert blended.probabilities["fear"] < as_trained.probabilities["fear"]
    assert blended.probabilities != pytest.approx(alone.probabilities, abs=1e-4)


def test_predict_and_its_workers_take_the_prior(tmp_path):
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), demo_face_48())
    expected = Recognizer(prior="photos").predict(str(photo), detect=False)[0].probabilities
    for workers in (1, 2):
        result = next(iter(recognize_paths([photo], workers=workers, detect=False,
                                           prior="photos")))
        assert result.faces[0].probabilities == pytest.approx(expected, abs=1e-6)
    out = run_cli("predict", photo, "--no-detect", "--json", "--prior", "photos")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["faces"][0]["probabilities"] == pytest.approx(expected,
                                                                                   abs=1e-4)


def test_predict_refuses_an_unknown_prior_in_one_line():
    assert_one_line_error(run_cli("predict", DEMO_PHOTO, "--prior", "crowds"), "--prior")
    with pytest.raises(FercnnError, match="unknown prior"):
        recognize_paths([DEMO_PHOTO], prior="crowds")


def test_evaluate_images_reports_the_prior(tmp_path):
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.png"), cv2.imread(str(DEMO_PHOTO)))
    for flags, prior in (((), "fer2013"), (("--prior", "photos"), "photos")):
        result = run_cli("evaluate", "default", "--images", tmp_path, "--json", *flags)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["prior"] == prior and report["accuracy"] == 1.0
