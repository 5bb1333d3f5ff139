"""Face detection and cropping: photo in, 48x48 gray crops prepared exactly as in training.

Detectors share one small interface (``detect(gray) -> list[Face]``), so another can be added
beside OpenCV's Haar cascade, which ships inside opencv-python-headless < 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from .errors import FercnnError
from .labels import IMAGE_SIZE

Box = tuple[int, int, int, int]  # x, y, width, height in the original image's pixels


@dataclass
class Face:
    box: Box
    score: float | None = None  # the detector's confidence; None for given boxes


class FaceDetector(Protocol):
    def detect(self, gray: np.ndarray) -> list[Face]: ...


class HaarDetector:
    """OpenCV's frontal-face Haar cascade, run on a copy at most ``max_side`` pixels wide/high
    (a 6000x4000 photo would take seconds otherwise); boxes are mapped back.

    Detections scoring below ``min_score`` (the cascade's last-stage weight) are dropped: on
    the bundled portrait, true faces score 5-7 and spurious boxes at most 1.2; on FER-2013 faces
    98.6% of detections score 2 or more.

    Faces smaller than ``min_size`` pixels (in the downscaled copy) are not searched for: the
    model sees a face about 40 px wide in its 48x48 input, so smaller faces carry less detail
    than it was trained on, and the cascade spends most of its time on those smallest scales
    (40 instead of 24 px: 1.6x faster, see benchmarks/results/detection.md).
    """

    def __init__(self, max_side: int = 1024, min_size: int = 40, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_score: float = 2.0) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FercnnError(f"cannot load OpenCV's Haar cascade from {path}")
        self.max_side, self.min_size = max_side, min_size
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_score = min_score

    def detect(self, gray: np.ndarray) -> list[Face]:
        scale = min(1.0, self.max_side / max(gray.shape[:2]))
        small = gray if scale == 1.0 else cv2.resize(gray, None, fx=scale, fy=scale,
                                                     interpolation=cv2.INTER_AREA)
        boxes, _, weights = self.cascade.detectMultiScale3(
            cv2.equalizeHist(small), scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors, minSize=(self.min_size, self.min_size),
            outputRejectLevels=True)
        faces = [Face(tuple(int(round(v / scale)) for v in box), float(weight))
                 for box, weight in zip(boxes, np.ravel(weights), strict=True)
                 if weight >= self.min_score]
        return sorted(faces, key=lambda f: (f.box[0], f.box[1]))


def to_gray(image: np.ndarray, order: str = "bgr") -> np.ndarray:
    """uint8 gray from a gray, BGR(A) or RGB(A) array (``order`` says which for colour).

    uint16 arrays are read as 16-bit images (0-65535), floats up to 1 as 0-1, any other type
    as 0-255 values."""
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        code = {("bgr", 3): cv2.COLOR_BGR2GRAY, ("bgr", 4): cv2.COLOR_BGRA2GRAY,
                ("rgb", 3): cv2.COLOR_RGB2GRAY, ("rgb", 4): cv2.COLOR_RGBA2GRAY}
        gray = cv2.cvtColor(image, code[(order, image.shape[2])])
    elif image.ndim == 3 and image.shape[2] == 1:
        gray = image[:, :, 0]
    else:
        raise FercnnError(f"expected a gray, BGR or RGB image array, got shape {image.shape}")
    if gray.dtype == np.uint16:  # 16-bit images, as cv2.imread(..., IMREAD_UNCHANGED) gives
        gray = np.rint(gray * (255 / 65535)).astype(np.uint8)
    elif gray.dtype != np.uint8:
        if np.issubdtype(gray.dtype, np.floating):  # rounded: 0.5019608 * 255 is 128, not 127
            gray = np.rint(gray * 255 if gray.max(initial=0) <= 1.0 else gray)
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(gray)


def is_deep_gray(image) -> bool:
    """A Pillow image of gray values deeper than 8 bits (modes ``I;16*``, ``I``, ``F``)."""
    return image.mode.startswith("I") or image.mode == "F"


def pil_gray(image) -> np.ndarray:
    """uint8 gray from a Pillow image of any mode. 16-bit gray PNGs and TIFFs, 32-bit integer
    and float TIFFs are scaled here: Pillow's own ``convert("L")`` clips them (a 16-bit
    portrait turns white). 32-bit integers count as 16-bit values when they exceed 255 and
    fit (16-bit PNGs open as ``I`` in some Pillow versions), else as 0-255."""
    if not is_deep_gray(image):
        return np.asarray(image.convert("L"))
    values = np.asarray(image)
    if image.mode == "I":
        low, high = values.min(initial=0), values.max(initial=0)
        values = values.astype(np.uint16) if 0 <= low and 255 < high <= 65535 else \
            np.clip(values, 0, 255).astype(np.uint8)
    elif image.mode.startswith("I;16"):
        values = values.astype(np.uint16)
    return to_gray(values)


def crop_face(gray: np.ndarray, box: Box, margin: float = 0.1) -> np.ndarray:
    """A square crop around ``box`` grown by ``margin`` per side, as 48x48 uint8 gray.

    The default margin reproduces FER-2013's framing: run on 600 upscaled training faces, the
    Haar cascade's box is centred and covers a median 83% of the crop, i.e. 10% per side.
    Parts outside the photo are filled by replicating the edge, not with black borders the
    model never saw.
    """
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    size = max(1, int(round(side)))
    pad = max(0, -x0, -y0, x0 + size - gray.shape[1], y0 + size - gray.shape[0])
    source = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    crop = source[y0 + pad:y0 + pad + size, x0 + pad:x0 + pad + size]
    shrink = size > IMAGE_SIZE
    return cv2.resize(crop, (IMAGE_SIZE, IMAGE_SIZE),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
