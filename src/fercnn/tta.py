"""Test-time augmentation: several views of each face, whose probabilities are averaged.

Three modes: ``none`` (the face as cropped), ``mirror`` (the face and its mirror image: the
recognition path's default, about half a point on PublicTest and on wild-dev photos for twice
a face's model work, which beside a photo's face detection is little) and ``ten`` (four
2-pixel shifts added, each mirrored too: ``--tta``)."""

from __future__ import annotations

import numpy as np

from .errors import FercnnError

SHIFT = 2  # pixels; the training recipes translate by up to 4
TTA_MODES = ("none", "mirror", "ten")


def tta_mode(value: bool | str | None) -> str:
    """One of TTA_MODES from a mode's name or the earlier on/off switch (True: ``ten``)."""
    if value is None or value is False:
        return "none"
    if value is True:
        return "ten"
    mode = str(value).strip().lower()
    if mode in ("true", "1", "yes"):
        return "ten"
    if mode in ("false", "0", "no"):
        return "none"
    if mode not in TTA_MODES:
        raise FercnnError(f"unknown TTA mode {value!r}: choose one of {', '.join(TTA_MODES)}")
    return mode


def mirror_views(images: np.ndarray) -> list[np.ndarray]:
    """(N, 48, 48) faces and their left-right mirror images."""
    return [images, np.ascontiguousarray(images[:, :, ::-1])]


def tta_views(images: np.ndarray) -> list[np.ndarray]:
    """Ten views of (N, 48, 48) uint8 faces: the image and four 2-pixel shifts (edge
    replicated, as in training), each also mirrored left-right."""
    padded = np.pad(images, ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT)), mode="edge")
    h, w = images.shape[1:]
    views = [images]
    for dy, dx in ((0, 0), (0, 2 * SHIFT), (2 * SHIFT, 0), (2 * SHIFT, 2 * SHIFT)):
        views.append(padded[:, dy:dy + h, dx:dx + w])
    return [np.ascontiguousarray(v) for view in views for v in (view, view[:, :, ::-1])]


def views_for(images: np.ndarray, mode: bool | str | None) -> list[np.ndarray]:
    """The views a mode averages (the faces alone for ``none``)."""
    mode = tta_mode(mode)
    if mode == "ten":
        return tta_views(images)
    return mirror_views(images) if mode == "mirror" else [images]
