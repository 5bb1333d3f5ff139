"""Annotated copies stay readable with many faces: panels and tags cover no face and no other
label (synthetic pictures; no model, no real photo)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pytest

from fercnn.labels import EMOTIONS
from fercnn.recognition import FaceResult
from fercnn.recognition.annotate import (
    COLORS,
    MAX_PANELS,
    _label,
    annotate,
    layout,
    placements,
    tag_layout,
)

FOUR_CLOSE = [(250, 120, 80, 80), (335, 140, 75, 75), (420, 115, 80, 80), (505, 135, 70, 70)]


def face(box, emotion: str = "happy", p: float = 0.87) -> FaceResult:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    probabilities = {e: (p if e == emotion else rest) for e in EMOTIONS}
    return FaceResult(box=tuple(box), emotion=emotion, probabilities=probabilities, score=0.9)


def overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(rect, shape) -> bool:
    x, y, w, h = rect
    return x >= 0 and y >= 0 and x + w <= shape[1] and y + h <= shape[0]


def noise(shape, seed: int = 0) -> np.ndarray:
    """A textured picture: any stroke drawn on it changes pixels."""
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def assert_interiors_untouched(before, after, boxes, border: int) -> None:
    """Inside each box, past its outline (``border`` px), the picture is as it was."""
    for x, y, w, h in boxes:
        region = np.s_[y + border:y + h - border, x + border:x + w - border]
        assert np.array_equal(before[region], after[region]), (x, y, w, h)


def assert_apart(rects, boxes, shape) -> None:
    """Labels inside the picture, off every face box and off each other."""
    for rect in rects:
        assert inside(rect, shape), rect
        assert not any(overlap(rect, box) for box in boxes), rect
    for a, b in combinations(rects, 2):
        assert not overlap(a, b), (a, b)


def test_layout_puts_panels_beside_faces_in_free_space():
    shape = (400, 800, 3)
    rects = layout(shape, FOUR_CLOSE, (160, 110))
    placed = [r for r in rects if r is not None]
    assert len(placed) >= 2  # room left of the group, right of it, and below
    assert_apart(placed, FOUR_CLOSE, shape)
    # the first face's first choice, right of it, is a face: it goes left instead
    assert rects[0][0] + rects[0][2] <= FOUR_CLOSE[0][0]


def test_layout_gives_none_where_no_panel_fits():
    shape = (200, 200, 3)
    assert layout(shape, [(20, 20, 160, 160)], (160, 110)) == [None]


def test_tag_layout_keeps_tags_off_faces_panels_and_each_other():
    shape = (400, 800, 3)
    panel = (50, 100, 160, 110)
    tags = tag_layout(shape, FOUR_CLOSE, (120, 22), taken=[panel])
    assert_apart(tags + [panel], FOUR_CLOSE, shape)


def test_four_close_faces_panels_and_tags_cover_no_face_and_no_label():
    image = noise((400, 800, 3))
    faces = [face(b, e) for b, e in zip(FOUR_CLOSE, ("happy", "sad", "neutral", "angry"),
                                         strict=True)]
    out = annotate(image, faces)
    assert out.shape == image.shape and out is not image
    assert not np.array_equal(out, image)
    places = placements(image.shape, faces)
    assert {kind for kind, _ in places} <= {"panel", "tag"}
    assert "panel" in {kind for kind, _ in places}
    assert_apart([rect for _, rect in places], FOUR_CLOSE, image.shape)
    assert_interiors_untouched(image, out, FOUR_CLOSE, border=3)


def test_group_of_31_small_faces_gets_compact_tags_off_every_face():
    shape = (2022, 4844, 3)
    top = [(400 + 260 * i, 800, 55, 58) for i in range(16)]
    bottom = [(530 + 260 * i, 930, 58, 60) for i in range(15)]
    boxes = top + bottom
    faces = [face(b, EMOTIONS[i % 7], 0.4 + i / 100) for i, b in enumerate(boxes)]
    places = placements(shape, faces)
    assert [kind for kind, _ in places] == ["tag"] * 31
    assert_apart([rect for _, rect in places], boxes, shape)
    # legible once the photo is shrunk to 1600 px: tags at least 8 px tall there
    assert min(h for _, (_, _, _, h) in places) * 1600 / shape[1] >= 8
    image = noise(shape, seed=1)
    out = annotate(image, faces)
    assert_interiors_untouched(image, out, boxes, border=4)


def test_more_than_max_panels_faces_get_tags_even_with_room():
    shape = (3000, 6000, 3)
    boxes = [(300 + 700 * i, 1400, 120, 120) for i in range(MAX_PANELS + 1)]
    assert {kind for kind, _ in placements(shape, [face(b) for b in boxes])} == {"tag"}
    few = placements(shape, [face(b) for b in boxes[:MAX_PANELS]])
    assert {kind for kind, _ in few} == {"panel"}


def test_single_face_on_512_photo_gets_its_full_panel():
    image = noise((512, 512, 3), seed=2)
    box = (173, 67, 107, 108)
    [(kind, rect)] = placements(image.shape, [face(box)])
    assert kind == "panel"
    x, y, w, h = rect
    assert w >= 160 and h >= 7 * 14  # seven rows of bars, a label above
    assert_apart([rect], [box], image.shape)
    out = annotate(image, [face(box)])
    assert not np.array_equal(out[y:y + h, x:x + w], image[y:y + h, x:x + w])
    assert_interiors_untouched(image, out, [box], border=3)


def test_face_too_big_for_a_panel_gets_a_tag():
    [(kind, rect)] = placements((200, 200, 3), [face((20, 30, 160, 160))])
    assert kind == "tag" and inside(rect, (200, 200, 3))


@dataclass
class Tracked(FaceResult):
    track: int | None = None


def test_tracked_faces_are_labelled_with_their_number():
    assert _label(face((0, 0, 10, 10), "sad", 0.42)) == "sad 42%"
    tracked = Tracked(**vars(face((0, 0, 10, 10), "sad", 0.42)), track=3)
    assert _label(tracked) == "#3 sad 42%"
    out = annotate(noise((300, 400, 3)), [tracked])
    assert out.shape == (300, 400, 3)


@pytest.mark.parametrize("shape", [(240, 320), (240, 320, 4)])
def test_gray_and_bgra_pictures_give_bgr_copies(shape):
    image = noise(shape, seed=3)
    before = image.copy()
    out = annotate(image, [face((100, 60, 80, 80), "fear")])
    assert out.shape == (240, 320, 3)
    assert np.array_equal(image, before)


def test_no_faces_gives_an_unchanged_copy_and_colours_stay():
    image = noise((100, 100, 3))
    assert np.array_equal(annotate(image, []), image)
    assert set(COLORS) == set(EMOTIONS)
