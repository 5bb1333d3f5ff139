"""The photo reader: face-api.js's network blended into the bundled models' reading of faces
larger than FER-2013's, never of FER-2013-sized ones, and never voting on fear or disgust."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fercnn.errors import FercnnError
from fercnn.labels import EMOTIONS
from fercnn.recognition import Recognizer
from fercnn.recognition.bundled import DEMO_PHOTO
from fercnn.recognition.faces import Face
from fercnn.recognition.photo_reader import WEIGHT, PhotoReader, blend

from .conftest import run_cli

DISGUST, FEAR = EMOTIONS.index("disgust"), EMOTIONS.index("fear")


@pytest.fixture(scope="module")
def reader() -> PhotoReader:
    return PhotoReader()


def test_the_readers_share_grows_with_face_size_from_none_at_48_pixels(reader):
    shares = [reader.share(Face((10, 10, side, side))) for side in (30, 48, 72, 96, 400)]
    assert shares == pytest.approx([0.0, 0.0, WEIGHT / 2, WEIGHT, WEIGHT])
    assert reader.share(Face((0, 0, 40, 96))) == pytest.approx(WEIGHT)  # the longer side


def test_fear_and_disgust_stay_as_the_members_give_them():
    rng = np.random.default_rng(0)
    members, photo = (rng.dirichlet(np.ones(7), size=5) for _ in range(2))
    shares = np.array([0.0, 0.1, 0.2, 0.4, 1.0])
    mixed = blend(members, photo, shares)
    assert np.allclose(mixed.sum(1), 1.0)
    assert np.allclose(mixed[:, [DISGUST, FEAR]], members[:, [DISGUST, FEAR]])
    assert np.allclose(mixed[0], members[0])  # no share: the members alone
    others = [c for c in range(7) if c not in (DISGUST, FEAR)]
    whole = mixed[4, others] / mixed[4, others].sum()  # all share: the reader's five, in ratio
    assert np.allclose(whole, photo[4, others] / photo[4, others].sum())


def test_the_reader_crop_is_rgb_and_framed_on_the_box(reader):
    image = np.zeros((200, 200, 3), np.uint8)
    image[:, :, 2] = 255  # red in BGR
    image[:, 100:] = (255, 0, 0)  # right half blue
    crop = reader.crop(image, Face((50, 50, 100, 100)))
    assert crop.shape == (112, 112, 3)
    assert crop[56, 10].tolist() == [255, 0, 0] and crop[56, 100].tolist() == [0, 0, 255]
    gray = reader.crop(image[:, :, 0], Face((50, 50, 100, 100)))  # a gray photo: three equal
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()


def test_the_default_reads_a_large_face_with_the_reader_and_a_48_pixel_face_without():
    with_reader, alone = Recognizer(), Recognizer(photo_reader=False)
    assert with_reader.photo_reader is not None and alone.photo_reader is None
    big = with_reader.predict(str(DEMO_PHOTO))[0].probabilities
    big_alone = alone.predict(str(DEMO_PHOTO))[0].probabilities
    assert max(abs(big[e] - big_alone[e]) for e in EMOTIONS) > 1e-3
    assert big["fear"] == pytest.approx(big_alone["fear"])
    face = cv2.resize(cv2.imread(str(DEMO_PHOTO), cv2.IMREAD_GRAYSCALE)[67:175, 172:280],
                      (48, 48), interpolation=cv2.INTER_AREA)
    small = with_reader.predict(face, detect=False)[0].probabilities
    small_alone = alone.predict(face, detect=False)[0].probabilities
    assert small == pytest.approx(small_alone, abs=1e-7)


def test_only_the_bundled_default_and_accurate_models_take_the_reader():
    assert Recognizer("accurate").photo_reader is not None
    assert Recognizer("tiny").photo_reader is None
    assert Recognizer("tiny", photo_reader=True).photo_reader is not None


def test_a_file_that_is_no_model_is_a_one_line_error(tmp_path):
    junk = tmp_path / "reader.onnx"
    junk.write_bytes(b"not an onnx file")
    with pytest.raises(FercnnError, match="not a readable photo reader model") as error:
        PhotoReader(junk)
    assert "\n" not in str(error.value)


def test_an_impossible_share_is_refused():
    with pytest.raises(FercnnError, match="weight must be"):
        PhotoReader(weight=1.5)
    with pytest.raises(FercnnError, match="full_at"):
        PhotoReader(full_at=40)


def test_evaluate_images_says_whether_the_reader_was_on(tmp_path):
    (tmp_path / "happy").mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.png"), cv2.imread(str(DEMO_PHOTO)))
    for flags, on in (((), True), (("--no-photo-reader",), False)):
        result = run_cli("evaluate", "default", "--images", str(tmp_path), "--json", *flags)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert (report["photo_reader"] is not None) == on
        assert report["accuracy"] == 1.0
