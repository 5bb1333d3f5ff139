"""Test-time augmentation: several views of each face, whose probabilities are averaged."""

from __future__ import annotations

import numpy as np

SHIFT = 2  # pixels; the training recipes translate by up to 4


def tta_views(images: np.ndarray) -> list[np.ndarray]:
    """Ten views of (N, 48, 48) uint8 faces: the image and four 2-pixel shifts (edge
    replicated, as in training), each also mirrored left-right."""
    padded = np.pad(images, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT)), mode="edge")
    h, w = images.shape[1:]
    views = [images]
    for dy, dx in ((0, 0), (0, 2 * SHIFT), (2 * SHIFT, 0), (2 * SHIFT, 2 * SHIFT)):
        views.append(padded[:, dy:dy + h, dx:dx + w])
    return [np.ascontiguousarray(v) for view in views for v in (view, view[:, :, ::-1])]
