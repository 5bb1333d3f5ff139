"""What a face detector returns: one small data type that cropping, the Recognizer, annotation
and video tracks all take (as supervision's ``Detections``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

Box = tuple[int, int, int, int]  # x, y, width, height in the original image's pixels


@dataclass
class Face:
    box: Box
    score: float | None = None  # the detector's confidence; None for given boxes
    keypoints: np.ndarray | None = None  # (K, 2) x, y in image pixels, when the detector has them


class FaceDetector(Protocol):
    """Anything that finds faces in a uint8 gray (H, W) or BGR (H, W, 3) image."""

    def detect(self, image: np.ndarray) -> list[Face]: ...
