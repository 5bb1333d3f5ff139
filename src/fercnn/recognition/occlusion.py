"""Occlusion saliency (Zeiler & Fergus, 2014) for any model that maps faces to probabilities:
grey out one square of the face at a time and see how much the class's probability falls.

It needs nothing but the model's outputs, so it explains exported ONNX models without torch;
all the occluded views of a face go through the model as one batch (one onnxruntime call).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # (N, 48, 48) uint8 faces -> (N, 7) probabilities
# (faces, target class per face or None for the predicted ones) -> (maps, probabilities):
# what every saliency method offers, occlusion here and Grad-CAM on the training side
Saliency = Callable[..., tuple[np.ndarray, np.ndarray]]

WINDOW = 12  # pixels: a quarter of the face, an eye or the mouth in FER-2013's framing
STRIDE = 4


def window_corners(size: int, window: int = WINDOW, stride: int = STRIDE) -> list[int]:
    """Where the occluding square starts along one side, the last one flush with the edge."""
    corners = list(range(0, size - window + 1, stride))
    if corners[-1] != size - window:
        corners.append(size - window)
    return corners


def occluded_views(face: np.ndarray, window: int = WINDOW, stride: int = STRIDE
                   ) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The face with one square at a time set to its mean grey (a hole the model reads as
    "nothing here", not as a black patch), and each square's top-left corner (y, x)."""
    fill = np.uint8(round(float(face.mean())))
    corners = [(y, x) for y in window_corners(face.shape[0], window, stride)
               for x in window_corners(face.shape[1], window, stride)]
    views = np.repeat(face[None], len(corners), axis=0)
    for view, (y, x) in zip(views, corners, strict=True):
        view[y:y + window, x:x + window] = fill
    return views, corners


def occlusion_map(predict: Predict, face: np.ndarray, target: int | None = None,
                  window: int = WINDOW, stride: int = STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """(map, probabilities) of one 48x48 uint8 face: per pixel, the mean fall of the target
    class's probability (default: the predicted class) over the squares covering it, clipped
    at zero and scaled to a maximum of 1; and the face's own probabilities. One model call."""
    views, corners = occluded_views(face, window, stride)
    probabilities = predict(np.concatenate([face[None], views]))
    original, occluded = probabilities[0], probabilities[1:]
    target = int(original.argmax()) if target is None else target
    fall = original[target] - occluded[:, target]
    total = np.zeros(face.shape, np.float64)
    count = np.zeros(face.shape, np.float64)
    for drop, (y, x) in zip(fall, corners, strict=True):
        total[y:y + window, x:x + window] += drop
        count[y:y + window, x:x + window] += 1
    saliency = np.clip(total / count, 0, None)
    peak = saliency.max()
    return (saliency / peak if peak > 0 else saliency).astype(np.float32), original


def occlusion_maps(predict: Predict, faces: np.ndarray, targets: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`occlusion_map` for each of (N, 48, 48) faces: maps (N, 48, 48), probabilities
    (N, 7); one model call per face."""
    results = [occlusion_map(predict, face, None if targets is None else int(targets[i]))
               for i, face in enumerate(faces)]
    if not results:
        return np.zeros((0, *faces.shape[1:]), np.float32), np.zeros((0, 7), np.float32)
    maps, probabilities = zip(*results, strict=True)
    return np.stack(maps), np.stack(probabilities)
