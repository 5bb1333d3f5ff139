"""Drawing results on images with OpenCV: a box per face, and either a panel of the seven
probabilities or, where there is no room for one, a small "emotion NN%" tag. (OpenCV rather
than matplotlib: recognition installs need no plotting library.)

Panels and tags are laid out so that they cover no face and no other panel or tag: with
several close faces (a family photo) or dozens of small ones (a group photo) the old panels,
always drawn right of the face, covered each other and the neighbours' faces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS

# BGR colour per emotion, used for the box, the label and the bars.
COLORS = {"angry": (40, 40, 220), "disgust": (40, 140, 40), "fear": (150, 60, 150),
          "happy": (0, 200, 255), "sad": (200, 120, 40), "surprise": (0, 140, 255),
          "neutral": (160, 160, 160)}

Rect = tuple[int, int, int, int]  # x, y, width, height
Size = tuple[int, int]  # width, height
FONT = cv2.FONT_HERSHEY_SIMPLEX
MAX_PANELS = 6  # more faces than this get tags only: a page of panels is no longer readable


def annotate(image: np.ndarray, faces: list) -> np.ndarray:
    """A BGR copy of ``image`` with every face's box and emotion drawn: a probability panel
    beside the face where one fits in free space, a compact tag above or below it otherwise."""
    canvas = _bgr_copy(image)
    boxes = [_box(face) for face in faces]
    styles = [_Style(canvas.shape, box) for box in boxes]
    places = placements(canvas.shape, faces)
    for face, box, style in zip(faces, boxes, styles, strict=True):
        x, y, w, h = box
        cv2.rectangle(canvas, (x, y), (x + w, y + h), _color(face), style.line)
    for i, (kind, rect) in enumerate(places):
        if kind == "panel":
            _draw_panel(canvas, rect, faces[i], styles[i])
        else:
            _draw_leader(canvas, rect, boxes, i, _color(faces[i]), styles[i])
    for i, (kind, rect) in enumerate(places):  # tags last: over any other face's leader line
        if kind == "tag":
            _draw_tag(canvas, rect, _label(faces[i]), _color(faces[i]), styles[i])
    return canvas


def write_annotated(image: np.ndarray, faces: list, target: str | Path) -> str:
    """An annotated copy of ``image`` written to ``target`` (its folders made): ``predict``'s
    copies, written by whichever process recognised the image, so none travels back."""
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), annotate(image, faces)):
        raise FercnnError(f"{target}: cannot write image")
    return str(target)


def placements(image_shape: tuple[int, ...], faces: list) -> list[tuple[str, Rect]]:
    """Where ``annotate`` puts each face's label, in order: ("panel", rect) where a probability
    panel fits in free space and there are at most ``MAX_PANELS`` faces, else ("tag", rect)."""
    boxes = [_box(face) for face in faces]
    styles = [_Style(image_shape, box) for box in boxes]
    margins = [s.margin for s in styles]
    panels: list[Rect | None] = [None] * len(faces)
    if len(faces) <= MAX_PANELS:
        sizes = [s.panel_size(_label(face)) for s, face in zip(styles, faces, strict=True)]
        panels = layout(image_shape, boxes, sizes, margins=margins)
    rest = [i for i, rect in enumerate(panels) if rect is None]
    tags = tag_layout(image_shape, boxes, [styles[i].tag_size(_label(faces[i])) for i in rest],
                      order=rest, taken=[r for r in panels if r is not None], margins=margins)
    tag_of = dict(zip(rest, tags, strict=True))
    return [("panel", r) if r is not None else ("tag", tag_of[i]) for i, r in enumerate(panels)]


def _box(face) -> Rect:
    x, y, w, h = (int(v) for v in face.box)
    return x, y, w, h


def _bgr_copy(image: np.ndarray) -> np.ndarray:
    """A 3-channel copy to draw on (gray and BGRA photos too), so the caller's array stays."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image.copy()


def _label(face) -> str:
    """ "happy 87%", or "#3 happy 87%" for a face that a video tracker numbered."""
    text = f"{face.emotion} {face.probabilities.get(face.emotion, 0.0):.0%}"
    track = getattr(face, "track", None)
    return text if track is None else f"#{track} {text}"


def _color(face) -> tuple[int, int, int]:
    return COLORS.get(face.emotion, (255, 255, 255))


class _Style:
    """Sizes for one face's drawing, scaled with the picture (legible once a 5000 px photo is
    shrunk to a screen) and with the face (big faces, big labels), within bounds."""

    def __init__(self, shape: tuple[int, ...], box: Rect) -> None:
        long_side, face = max(shape[:2]), max(1, min(box[2], box[3]))
        image_unit = max(1.0, long_side / 640)
        self.line = max(1, round(min(2 * image_unit, face / 20)))
        self.margin = self.line + max(2, round(image_unit))  # outline plus a gap
        # panel: 1 on photos up to 1600 px, bigger with the photo and the face, but never
        # bigger than the old picture-wide scale
        self.unit = min(image_unit, max(1.0, long_side / 1600, face / 90))
        # tag: ~1/3 of the face tall, at least 8 px on the photo shrunk to 1600 px wide
        self.tag_font = min(max(face / 60, 0.4, long_side / 3500), 0.6 * image_unit)
        self.tag_thick = max(1, round(self.tag_font * 1.4))

    def text_size(self, text: str, font: float, thick: int) -> tuple[int, int, int]:
        (w, h), base = cv2.getTextSize(text, FONT, font, thick)
        return w, h, base

    def tag_size(self, label: str) -> Size:
        w, h, base = self.text_size(label, self.tag_font, self.tag_thick)
        pad = max(2, h // 4)
        return w + 2 * pad, h + base + 2 * pad

    def panel_size(self, label: str) -> Size:
        """A header with the label, then one row per emotion: name, bar, percentage."""
        u = self.unit
        head_w, head_h, base = self.text_size(label, 0.5 * u, self.panel_thick)
        width = max(int(162 * u), head_w + int(8 * u))
        return width, head_h + base + int(8 * u) + self.row * len(EMOTIONS)

    @property
    def row(self) -> int:
        return int(14 * self.unit)

    @property
    def panel_thick(self) -> int:
        return max(1, round(self.unit))


def _intersects(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _inside(rect: Rect, shape: tuple[int, ...]) -> bool:
    x, y, w, h = rect
    return x >= 0 and y >= 0 and x + w <= shape[1] and y + h <= shape[0]


def _grow(box: Rect, m: int) -> Rect:
    return box[0] - m, box[1] - m, box[2] + 2 * m, box[3] + 2 * m


def _per_box(value, n: int) -> list:
    """One value for every box: a list as given, or a single value repeated."""
    if isinstance(value, list):
        return value
    return [value] * n


def _panel_spots(box: Rect, size: Size, shape: tuple[int, ...]) -> list[Rect]:
    """Right, left, below, above ``box`` (already grown by its margin), slid along the box's
    side to stay within the picture."""
    x, y, w, h = box
    pw, ph = size
    top = min(max(0, y), shape[0] - ph)
    left = min(max(0, x), shape[1] - pw)
    return [(x + w, top, pw, ph), (x - pw, top, pw, ph),
            (left, y + h, pw, ph), (left, y - ph, pw, ph)]


def _tag_spots(box: Rect, size: Size, shape: tuple[int, ...]) -> list[Rect]:
    """Nearest first: right above ``box`` (grown by its margin), then right below; each
    left-aligned, centred, right-aligned, then slid half and a whole tag sideways; then one and
    two tag heights further out. Slid into the picture sideways."""
    x, y, w, h = box
    tw, th = size
    centre = x + (w - tw) // 2
    lefts = [x, centre, x + w - tw, centre - tw // 2, centre + tw // 2, centre - tw, centre + tw]
    spots = []
    for level in range(3):
        for top in (y - th * (level + 1), y + h + th * level):
            spots += [(min(max(0, left), shape[1] - tw), top, tw, th) for left in lefts]
    return spots


def _place(shape: tuple[int, ...], boxes: Sequence[Rect], sizes: list[Size], order: list[int],
           taken: list[Rect], margins: list[int], spots: Callable[..., list[Rect]],
           strict: bool) -> list[Rect | None]:
    """For each box in ``order``, the first candidate spot inside the picture that touches no
    (grown) face box and nothing placed so far. Unless ``strict``, settle for one that covers
    no face, then for any inside the picture, then None."""
    grown = [_grow(b, m) for b, m in zip(boxes, margins, strict=True)]
    chosen: list[Rect | None] = []
    for i, size in zip(order, sizes, strict=True):
        inside = [s for s in spots(grown[i], size, shape) if _inside(s, shape)]
        clear = [s for s in inside if not any(_intersects(s, g) for g in grown)]
        free = [s for s in clear if not any(_intersects(s, t) for t in taken)]
        best = (free if strict else free or clear or inside or [None])[:1] or [None]
        if best[0] is not None:
            taken.append(best[0])
        chosen.append(best[0])
    return chosen


def layout(image_shape: tuple[int, ...], boxes: Sequence[Rect], panel_size: Size | list[Size],
           taken: Sequence[Rect] = (), margins: int | list[int] = 4) -> list[Rect | None]:
    """Panel rectangles, one per box in order: the first of right, left, below, above the box
    (``margins`` px away) that lies inside the image and overlaps no face box, no earlier panel
    and nothing in ``taken``; None for a box where none does (it gets a tag instead)."""
    n = len(boxes)
    return _place(image_shape, boxes, _per_box(panel_size, n), list(range(n)), list(taken),
                  _per_box(margins, n), _panel_spots, strict=True)


def tag_layout(image_shape: tuple[int, ...], boxes: Sequence[Rect], tag_sizes: Size | list[Size],
               order: list[int] | None = None, taken: Sequence[Rect] = (),
               margins: int | list[int] = 4) -> list[Rect]:
    """Tag rectangles for the boxes in ``order`` (all, by default): above the box, else below,
    free of face boxes, panels in ``taken`` and each other; where nothing is free, a spot that
    at least covers no face; failing that, right above the box, inside the picture."""
    order = list(range(len(boxes))) if order is None else order
    sizes = _per_box(tag_sizes, len(order))
    # top to bottom: the upper faces take the room above them, the lower ones fill in
    ranked = sorted(range(len(order)), key=lambda k: (boxes[order[k]][1], boxes[order[k]][0]))
    placed_ranked = _place(image_shape, boxes, [sizes[k] for k in ranked],
                           [order[k] for k in ranked], list(taken),
                           _per_box(margins, len(boxes)), _tag_spots, strict=False)
    placed: list[Rect | None] = [None] * len(order)
    for k, rect in zip(ranked, placed_ranked, strict=True):
        placed[k] = rect
    rects = []
    for i, (tw, th), rect in zip(order, sizes, placed, strict=True):
        if rect is None:  # a tag wider or taller than the picture: clip it at the top left
            x, y = min(max(0, boxes[i][0]), max(0, image_shape[1] - tw)), max(0, boxes[i][1] - th)
            rect = (x, y, tw, th)
        rects.append(rect)
    return rects


def _leader(tag: Rect, box: Rect) -> tuple[tuple[int, int], tuple[int, int]]:
    """The ends of a line from ``box``'s top or bottom edge to the nearest point of ``tag``."""
    x, y, w, h = box
    tx, ty, tw, th = tag
    above = ty + th / 2 < y + h / 2
    bx = min(max(tx + tw // 2, x), x + w)
    start = (bx, y if above else y + h)
    end = (min(max(bx, tx), tx + tw - 1), ty + th - 1 if above else ty)
    return start, end


def _draw_leader(canvas: np.ndarray, tag: Rect, boxes: list[Rect], i: int,
                 color: tuple[int, int, int], style: _Style) -> None:
    """A thin line to a tag that had to move away from its face, so that it is clear whose it
    is; left out where the line would cross another face."""
    start, end = _leader(tag, boxes[i])
    if abs(start[0] - end[0]) + abs(start[1] - end[1]) <= 2 * style.margin:
        return
    others = [_grow(b, style.margin) for k, b in enumerate(boxes) if k != i]
    for t in np.linspace(0, 1, 24):
        px, py = start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1])
        if any(ox <= px <= ox + ow and oy <= py <= oy + oh for ox, oy, ow, oh in others):
            return
    cv2.line(canvas, start, end, color, max(1, style.line // 2), cv2.LINE_AA)


def _draw_tag(canvas: np.ndarray, rect: Rect, label: str, color: tuple[int, int, int],
              style: _Style) -> None:
    """Black text on the emotion's colour."""
    x, y, w, h = rect
    cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), color, -1)
    _, th, base = style.text_size(label, style.tag_font, style.tag_thick)
    pad = (h - th - base) // 2
    cv2.putText(canvas, label, (x + pad, y + pad + th), FONT, style.tag_font, (0, 0, 0),
                style.tag_thick, cv2.LINE_AA)


def _draw_panel(canvas: np.ndarray, rect: Rect, face, style: _Style) -> None:
    """The label on the emotion's colour, over seven bars on a darkened patch of the photo."""
    x, y, w, h = rect
    u, row, thick = style.unit, style.row, style.panel_thick
    bars_top = y + h - row * len(EMOTIONS)
    patch = canvas[bars_top:y + h, x:x + w]
    patch[:] = (patch * 0.35).astype(canvas.dtype)  # darkened, not hidden: the photo shows
    cv2.rectangle(canvas, (x, y), (x + w - 1, bars_top - 1), _color(face), -1)
    label = _label(face)
    _, th, _ = style.text_size(label, 0.5 * u, thick)
    cv2.putText(canvas, label, (x + int(4 * u), y + int(4 * u) + th), FONT, 0.5 * u, (0, 0, 0),
                thick, cv2.LINE_AA)
    name_width, width = int(62 * u), int(60 * u)
    for i, emotion in enumerate(EMOTIONS):
        p = float(face.probabilities.get(emotion, 0.0))
        top = bars_top + i * row
        cv2.putText(canvas, emotion, (x + 2, top + row - 3), FONT, 0.38 * u, (255, 255, 255),
                    thick, cv2.LINE_AA)
        x0 = x + name_width
        cv2.rectangle(canvas, (x0, top + 2), (x0 + int(width * p), top + row - 2),
                      COLORS[emotion], -1)
        cv2.putText(canvas, f"{p:.0%}", (x0 + width + 3, top + row - 3), FONT, 0.38 * u,
                    (255, 255, 255), thick, cv2.LINE_AA)
