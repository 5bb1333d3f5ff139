"""From a face box in a photo to the 48x48 gray crop the model reads, framed as FER-2013's
faces are."""

from __future__ import annotations

import cv2
import numpy as np

from ..labels import IMAGE_SIZE
from .faces import Box


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
