"""A second reader for faces larger than FER-2013's: face-api.js's expression network, trained
on photos, reading the colour face at 112x112 beside the 48x48 gray members.

Every network trained here learnt from 48x48 gray faces, and on labelled photos reads neutral
faces as angry or sad. face-api.js's network (MIT) was trained on web photos: on wild-dev's
gray portraits it reads 80.7% against the default's 73.6%, mostly by calling neutral faces
neutral, but on FER-2013's own 48x48 faces it reads only 59%, and it never answers fear. So
its share of a face's probabilities grows with the face's size in the photo, from nothing at
FER-2013's 48 pixels (where the bundled models' FER-2013 figures are therefore unchanged) to
``weight`` at ``full_at`` pixels, and it does not vote on fear and disgust, which stay as the
FER-2013 members give them (benchmarks/results/photo_reader_choice.md, docs/recognition.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS, IMAGE_SIZE
from .bundled import ASSETS
from .crop import frame_face
from .faces import Face
from .sessions import cpu_session

READER_MODEL = ASSETS / "faceapi_expression.onnx"  # scripts/convert_faceapi.py
INPUT_SIZE = 112
# face-api.js's own framing: a square of the box and a fifth more, not turned upright (face-api.js
# crops detector boxes as they are); on wild-dev a tenth or three tenths more, or turning the
# face upright, moved accuracy by under a point (benchmarks/results/photo_reader_choice.md)
BOX_WIDTH = INPUT_SIZE / 1.2
BOX_CENTRE = (INPUT_SIZE / 2, INPUT_SIZE / 2)
WEIGHT = 0.4  # the reader's share of a face of ``FULL_AT`` pixels or more
FULL_AT = 96  # face side in photo pixels where the share is whole; none at IMAGE_SIZE
LEFT_TO_MEMBERS = (EMOTIONS.index("disgust"), EMOTIONS.index("fear"))


class PhotoReader:
    """face-api.js's expression network on colour faces, and how much of each face it reads."""

    def __init__(self, path: str | Path = READER_MODEL, weight: float = WEIGHT,
                 full_at: float = FULL_AT, threads: int | None = None) -> None:
        if not 0 <= weight <= 1 or full_at <= IMAGE_SIZE:
            raise FercnnError(f"photo reader: weight must be in [0, 1] and full_at above "
                              f"{IMAGE_SIZE} pixels (got {weight}, {full_at})")
        self.session = cpu_session(path, threads, "photo reader model")
        self.weight, self.full_at = weight, full_at

    def share(self, face: Face) -> float:
        """The reader's share of this face (:func:`size_share` of the box's longer side)."""
        return float(size_share(max(face.box[2], face.box[3]), self.weight, self.full_at))

    def crop(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The reader's 112x112 RGB view of a face in a BGR (or gray) uint8 image."""
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        crop = frame_face(image, face, INPUT_SIZE, BOX_WIDTH, BOX_CENTRE, rotate=False)
        return np.ascontiguousarray(crop[:, :, ::-1])

    def predict(self, crops: np.ndarray, mirror: bool = True) -> np.ndarray:
        """Probabilities (N, 7) of (N, 112, 112, 3) RGB uint8 crops, with their mirror images
        averaged in unless ``mirror`` is false."""
        x = crops.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255)
        if mirror:
            x = np.concatenate([x, x[..., ::-1]])
        probabilities = self.session.run(None, {"face": x})[0]
        if mirror:
            probabilities = probabilities.reshape(2, len(crops), -1).mean(axis=0)
        return probabilities


def size_share(side, weight: float = WEIGHT, full_at: float = FULL_AT):
    """The reader's share of a face ``side`` pixels wide (a number or an array): 0 up to
    FER-2013's 48 pixels, rising linearly to ``weight`` at ``full_at`` pixels."""
    return weight * np.clip((np.asarray(side, dtype=float) - IMAGE_SIZE)
                            / (full_at - IMAGE_SIZE), 0.0, 1.0)


def blend(members: np.ndarray, reader: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Each face's probabilities: the members' and the reader's mixed by the face's share,
    except that disgust and fear keep the members' probabilities (the reader never answers
    fear and almost never disgust); the reader's other five are rescaled to the rest."""
    kept = list(LEFT_TO_MEMBERS)
    others = reader.copy()
    others[:, kept] = 0.0
    rest = 1.0 - members[:, kept].sum(axis=1, keepdims=True)
    others *= rest / np.maximum(others.sum(axis=1, keepdims=True), 1e-12)
    others[:, kept] = members[:, kept]
    shares = np.asarray(shares, dtype=members.dtype)[:, None]
    return (1.0 - shares) * members + shares * others
