"""From a face box in a photo to the 48x48 gray crop the model reads, framed as FER-2013's
faces are."""

from __future__ import annotations

import cv2
import numpy as np

from ..labels import IMAGE_SIZE
from .faces import Box, Face
from .scaling import halve, halvings

# FER-2013's framing as BlazeFace sees it (benchmarks/results/fer_framing.md: 984 Training
# faces upscaled 4x and re-detected): the box is 41 of the crop's 48 pixels wide, its centre
# at (24, 27). Box width is the steadier scale cue (13% spread against 18% for the eye
# distance, which also shrinks as a head turns), so it sets the scale and the eyes only the
# angle.
FER_BOX_WIDTH = 41.0
FER_BOX_CENTRE = (24.0, 27.0)
MAX_ANGLE = 45.0  # degrees; beyond this the eye keypoints of a profile face are guesses


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


def eye_angle(face: Face) -> float:
    """The tilt of the eye line in degrees (positive: the left eye lower in the image), 0 for
    a face without keypoints; clipped to +-``MAX_ANGLE``."""
    if face.keypoints is None or len(face.keypoints) < 2:
        return 0.0
    right_eye, left_eye = face.keypoints[0], face.keypoints[1]
    dx, dy = left_eye - right_eye
    return float(np.clip(np.degrees(np.arctan2(dy, dx)), -MAX_ANGLE, MAX_ANGLE))


def align_face(gray: np.ndarray, face: Face, rotate: bool = True) -> np.ndarray:
    """The 48x48 crop of a detected face framed as FER-2013 frames it (box width and centre
    at their FER-2013 places) and, with ``rotate``, turned so the eyes are level: a tilted
    head reaches the model upright. Outside the photo the edge is replicated."""
    return frame_face(gray, face, IMAGE_SIZE, FER_BOX_WIDTH, FER_BOX_CENTRE, rotate)


def frame_face(image: np.ndarray, face: Face, size: int, box_width: float,
               box_centre: tuple[float, float], rotate: bool = True) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``image`` (gray or colour) in which the face's box is
    ``box_width`` pixels wide and centred at ``box_centre``, turned upright by the eye angle
    with ``rotate``: the framing each reader of a face was trained on."""
    x, y, w, h = face.box
    scale = max(w, h) / box_width  # photo pixels per crop pixel
    centre = np.array([x + w / 2, y + h / 2])
    # the region the rotated crop can reach, with a pixel to spare for interpolation
    reach = size * scale * (np.sqrt(2) if rotate else 1.0) + 2 * scale + 2
    times = halvings(scale)  # area-average large faces down by whole halvings first, so the
    # crop does not alias; the region's side is a multiple of 2**times, so they are exact
    shrink = 2.0 ** times
    x0, y0 = (int(np.floor(v - reach)) for v in centre)
    side = int(np.ceil(2 * reach / shrink) * shrink)
    pad = max(0, -x0, -y0, x0 + side - image.shape[1], y0 + side - image.shape[0])
    source = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad \
        else image
    region = halve(source[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side], times)
    # crop pixel (u, v) -> region pixel: rotate and scale about the box centre, in OpenCV's
    # convention of integer pixel centres
    angle = np.radians(eye_angle(face)) if rotate else 0.0
    step = scale / shrink
    cos, sin = np.cos(angle) * step, np.sin(angle) * step
    centre_region = (centre - (x0, y0)) / shrink - 0.5
    u0, v0 = box_centre[0] - 0.5, box_centre[1] - 0.5
    matrix = np.array([[cos, -sin, centre_region[0] - cos * u0 + sin * v0],
                       [sin, cos, centre_region[1] - sin * u0 - cos * v0]])
    return cv2.warpAffine(region, matrix, (size, size),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def crop_to_photo(face: Face, rotate: bool = True, margin: float = 0.1) -> np.ndarray:
    """The 2x3 affine map from the 48x48 crop's pixels to the photo's, as :func:`align_face`
    (a face with keypoints) or :func:`crop_face` (a box alone) framed it: what carries a map
    drawn over the crop (a saliency map) back onto the photo."""
    x, y, w, h = face.box
    if face.keypoints is None:
        side = max(w, h) * (1 + 2 * margin)
        x0 = int(round(x + w / 2 - side / 2))
        y0 = int(round(y + h / 2 - side / 2))
        step = max(1, int(round(side))) / IMAGE_SIZE
        return np.array([[step, 0.0, x0 + step / 2 - 0.5], [0.0, step, y0 + step / 2 - 0.5]])
    scale = max(w, h) / FER_BOX_WIDTH
    angle = np.radians(eye_angle(face)) if rotate else 0.0
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    cx, cy = x + w / 2 - 0.5, y + h / 2 - 0.5
    u0, v0 = FER_BOX_CENTRE[0] - 0.5, FER_BOX_CENTRE[1] - 0.5
    return np.array([[cos, -sin, cx - cos * u0 + sin * v0],
                     [sin, cos, cy - sin * u0 - cos * v0]])
