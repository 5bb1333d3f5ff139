"""BlazeFace: the bundled portrait's face and keypoints, tiny crops, no false faces on noise,
boxes mapped back through the letterbox, and (with FERCNN_REAL_DATA) the three test photos."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fercnn.recognition.blazeface import MODELS, BlazeFaceDetector, ssd_anchors, tile_starts

ASTRONAUT = Path(__file__).resolve().parents[1] / "src" / "fercnn" / "assets" / "astronaut.png"


@pytest.fixture(scope="module")
def detector() -> BlazeFaceDetector:
    return BlazeFaceDetector(threads=1)


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return cv2.imread(str(ASTRONAUT), cv2.IMREAD_COLOR)


def test_anchor_counts():
    assert len(ssd_anchors(MODELS["short"])) == 896
    assert len(ssd_anchors(MODELS["full"])) == 2304


def test_tiles_cover_with_overlap():
    starts = tile_starts(1000, 192, 64)
    assert starts[0] == 0 and starts[-1] == 1000 - 192
    assert all(b - a <= 192 - 64 for a, b in zip(starts, starts[1:], strict=False))


def test_portrait_face_and_keypoints(detector, portrait):
    faces = detector.detect(portrait)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 150 <= x <= 200 and 40 <= y <= 100 and 80 <= w <= 150 and 80 <= h <= 150
    assert faces[0].score > 0.8
    points = faces[0].keypoints
    assert points.shape == (6, 2)
    right_eye, left_eye, nose, mouth = points[:4]
    assert right_eye[0] < nose[0] < left_eye[0]  # the person's right eye is on the image's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    assert points[4, 0] < right_eye[0] and points[5, 0] > left_eye[0]  # ears outside the eyes


def test_gray_image(detector, portrait):
    faces = detector.detect(cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY))
    assert len(faces) == 1


def test_face_filling_a_small_crop(detector, portrait):
    x, y, w, h = detector.detect(portrait)[0].box
    crop = cv2.resize(portrait[y:y + h, x:x + w], (60, 60), interpolation=cv2.INTER_AREA)
    faces = detector.detect(crop)
    assert len(faces) == 1
    fx, fy, fw, fh = faces[0].box
    assert fw >= 40 and fx + fw <= 60 and fy + fh <= 60


def test_no_face_on_blank_or_noise(detector):
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) == []
    assert detector.detect(np.full((300, 400), 128, np.uint8)) == []


def test_boxes_mapped_back_through_letterbox(detector, portrait):
    (x, y, w, h), = (f.box for f in detector.detect(portrait))
    for top, left, shape in ((0, 300, (512, 1100, 3)), (200, 0, (900, 512, 3))):
        canvas = np.zeros(shape, np.uint8)
        canvas[top:top + 512, left:left + 512] = portrait
        (bx, by, bw, bh), = (f.box for f in detector.detect(canvas))
        assert abs(bx - (x + left)) <= 8 and abs(by - (y + top)) <= 8
        assert abs(bw - w) <= 12 and abs(bh - h) <= 12


def test_rejects_bad_input(detector):
    from fercnn.errors import FercnnError

    with pytest.raises(FercnnError):
        detector.detect(np.zeros((10, 10), np.float32))


@pytest.fixture(scope="module")
def photos() -> Path:
    folder = Path(os.environ.get("FERCNN_REAL_DATA", "")) / "photos"
    if not os.environ.get("FERCNN_REAL_DATA") or not folder.is_dir():
        pytest.skip("test photos not available: set FERCNN_REAL_DATA to a folder with photos/")
    return folder


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "least", "most"), [
    ("obama_family.jpg", 4, 4),
    ("group_10mpx.jpg", 29, 31),
    ("biden_7mpx.jpg", 1, 1),
])
def test_real_photos(photos, name, least, most):
    image = cv2.imread(str(photos / name), cv2.IMREAD_COLOR)
    faces = BlazeFaceDetector().detect(image)
    assert least <= len(faces) <= most
    assert [f.box[:2] for f in faces] == sorted(f.box[:2] for f in faces)


def test_windows_side_by_side_find_what_one_at_a_time_finds(detector, portrait):
    """Two threads running tiles at once must merge to the same faces as one thread: the
    portrait shrunk to 250 and 600 px (faces of about 50 and 120) and pasted into a 2400x1600
    scene, searched through 40+ tiles."""
    scene = np.full((1600, 2400, 3), 90, np.uint8)
    scene[900:1150, 1700:1950] = cv2.resize(portrait, (250, 250), interpolation=cv2.INTER_AREA)
    scene[100:700, 200:800] = cv2.resize(portrait, (600, 600), interpolation=cv2.INTER_AREA)
    side_by_side = BlazeFaceDetector(threads=2)
    assert len(side_by_side.plan(*scene.shape[:2])) > 40
    one, two = detector.detect(scene), side_by_side.detect(scene)
    assert len(one) == 2
    assert [(f.box, f.score) for f in two] == [(f.box, f.score) for f in one]
    assert np.array_equal(two[1].keypoints, one[1].keypoints)
