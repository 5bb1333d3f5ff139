"""OpenCV's Haar cascade: the fallback face detector (``--detector haar``), which ships inside
opencv-python-headless < 5 and needs no model file of ours."""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import FercnnError
from .faces import Face
from .images import to_gray


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

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = to_gray(image)
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
