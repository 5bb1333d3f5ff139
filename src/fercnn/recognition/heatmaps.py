"""Saliency maps drawn for people: coloured over the 48x48 crop, and carried back onto the
photo through the crop's framing (``crop.crop_to_photo``), so a map reads where the face is.
numpy and OpenCV only, whatever method made the map."""

from __future__ import annotations

import cv2
import numpy as np

ALPHA = 0.5  # the map's share of an overlaid pixel where the map is at its peak


def to_bgr(image: np.ndarray) -> np.ndarray:
    """A uint8 gray or BGR image as BGR."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()


def colour(saliency: np.ndarray) -> np.ndarray:
    """A [0, 1] map as a BGR image (OpenCV's JET: blue low, red high)."""
    scaled = np.clip(saliency * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_JET)


def blend(image: np.ndarray, saliency: np.ndarray, weight: np.ndarray | None = None
          ) -> np.ndarray:
    """The map laid over a same-sized image, more opaque where it is higher (and only where
    ``weight``, in [0, 1], lets it: the face's area of a photo)."""
    alpha = ALPHA * np.sqrt(np.clip(saliency, 0, 1))
    if weight is not None:
        alpha = alpha * weight
    alpha = alpha[..., None]
    mixed = (1 - alpha) * to_bgr(image) + alpha * colour(saliency)
    return np.clip(mixed, 0, 255).astype(np.uint8)


def crop_panel(face: np.ndarray, saliency: np.ndarray, zoom: int = 4) -> np.ndarray:
    """The crop, the map and the two overlaid, side by side, ``zoom`` times larger."""
    size = (face.shape[1] * zoom, face.shape[0] * zoom)
    big_face = cv2.resize(face, size, interpolation=cv2.INTER_NEAREST)
    big_map = cv2.resize(saliency, size, interpolation=cv2.INTER_LINEAR)
    gap = np.full((size[1], 4, 3), 255, np.uint8)
    return np.hstack([to_bgr(big_face), gap, colour(big_map), gap, blend(big_face, big_map)])


def to_photo(saliency: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...]
             ) -> tuple[np.ndarray, np.ndarray]:
    """(map, coverage) in the photo's pixels (``shape``: its height and width first): the crop's
    map warped through ``matrix`` (crop -> photo); coverage is 1 inside the crop's square."""
    size = (shape[1], shape[0])
    warped = cv2.warpAffine(saliency.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inside = cv2.warpAffine(np.ones_like(saliency, np.float32), matrix, size,
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    return warped, inside


def overlay_photo(photo: np.ndarray, maps: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The photo (BGR or gray) with each face's (map, coverage) in the photo's pixels laid
    over it."""
    out = to_bgr(photo)
    for saliency, inside in maps:
        out = blend(out, saliency, inside)
    return out
