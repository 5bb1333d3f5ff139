"""Recognizer: images in, faces with emotions out. numpy, OpenCV, Pillow and onnxruntime only.

One image's way: load (path, array or PIL image) -> gray -> face boxes (detector, given, or the
whole image) -> 48x48 crops -> one onnxruntime call for all faces -> probabilities; with the
bundled default and accurate models, faces larger than FER-2013's are also read in colour by
the photo reader (photo_reader.py) and the two are blended. With ``prior="photos"`` the model's
probabilities are first moved from FER-2013's mix of expressions to that of photos (priors.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS, IMAGE_SIZE
from ..tta import tta_mode, views_for
from .bundled import PHOTO_READER_MODELS, model_path
from .crop import align_face, crop_face
from .faces import Box, Face, FaceDetector
from .haar import HaarDetector
from .images import load_image, to_gray
from .photo_reader import BOX_WIDTH, PhotoReader, blend
from .photo_reader import INPUT_SIZE as READER_SIZE
from .priors import TRAINED_ON, Calibration, prior_weights, shift_prior
from .sessions import cpu_session

DETECTORS = ("blazeface", "haar")


def make_detector(name: str = "blazeface", min_face: int | None = None,
                  threads: int | None = None) -> FaceDetector:
    """A detector by name: ``blazeface`` (the default: MediaPipe's neural detector, faces of
    every size, with eye keypoints for alignment) or ``haar`` (OpenCV's cascade, the earlier
    default). ``min_face``: the smallest face searched for, in pixels (Haar: of the photo
    scaled to at most 1024 px). ``threads``: how many of BlazeFace's windows run at once, on a
    thread each (default 2; 1 in each process of a pool, which keeps the cores busy by
    itself)."""
    if name == "haar":
        return HaarDetector() if min_face is None else HaarDetector(min_size=min_face)
    if name == "blazeface":
        from .blazeface import BlazeFaceDetector

        options = {} if threads is None else {"threads": threads}
        if min_face is None:
            return BlazeFaceDetector(**options)
        return BlazeFaceDetector(min_face=min_face, drop_below=min_face, **options)
    raise FercnnError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")


@dataclass
class FaceResult:
    box: Box
    emotion: str
    probabilities: dict[str, float]
    score: float | None = None

    def to_dict(self) -> dict:
        return {"box": list(self.box), "emotion": self.emotion,
                "probabilities": self.probabilities, "score": self.score}


def image_report(image: str, faces: list[FaceResult]) -> dict:
    """One image's JSON: an entry of ``fercnn predict --json`` and the body of ``fercnn
    serve``'s answer, built here once so the two cannot drift apart."""
    return {"image": image, "faces": [face.to_dict() for face in faces]}


def _colour_image(loaded: np.ndarray, gray: np.ndarray) -> np.ndarray:
    """What the photo reader crops from: the BGR image as loaded (alpha dropped), or the gray
    one where there is no 8-bit colour (gray, 16-bit and float images)."""
    if loaded.ndim == 3 and loaded.shape[2] >= 3 and loaded.dtype == np.uint8:
        return loaded[..., :3]
    return gray


class Recognizer:
    """Emotions of the faces in an image, with an ONNX model exported by ``fercnn export``:
    a path, or the name of a bundled one ("default", the fast one; "accurate").

    ``photo_reader``: blend in the photo reader on faces larger than FER-2013's (None: with
    the bundled default and accurate models only; a PhotoReader: that one). ``prior``: the mix
    of expressions the faces of photos are read for, ``fer2013`` (the model as trained) or
    ``photos`` (mostly happy and neutral, as in web photos; priors.py)."""

    def __init__(self, model: str | Path | None = None, detector: FaceDetector | None = None,
                 margin: float = 0.1, threads: int | None = None, tta: bool | str = "mirror",
                 align: bool = True, photo_reader: bool | PhotoReader | None = None,
                 prior: str = TRAINED_ON) -> None:
        path = model_path(model)
        self.session = cpu_session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = json.loads(meta["fercnn"]) if "fercnn" in meta else {}
        self.classes = tuple(self.metadata.get("classes", EMOTIONS))
        self.scale = float(self.metadata.get("input", {}).get("scale", 1 / 255))
        self.input_name = self.session.get_inputs()[0].name
        self.detector = detector
        # faces with keypoints are framed as FER-2013's (crop.align_face) and, with align,
        # turned upright; boxes alone (Haar, given boxes) are cropped with this margin
        self.margin = margin
        self.align = align
        self.path = path
        # views of each face whose probabilities are averaged (fercnn.tta): by default the
        # face and its mirror image (on wild-dev photos +1.3 points of accuracy for the
        # default model, +1.0 for tiny; benchmarks/results/wild_dev.md); "none" gives the
        # model's own output (teachers, saliency), "ten" adds shifts
        self.tta = tta_mode(tta)
        if photo_reader is None:
            photo_reader = path.resolve() in PHOTO_READER_MODELS
        if photo_reader is True:
            photo_reader = PhotoReader(threads=threads)
        self.photo_reader: PhotoReader | None = photo_reader or None
        prior_weights(prior, self.classes)  # an unknown name or class fails here, not later
        self.prior = prior
        # what calibrates the model's probabilities before a prior shift (priors.py)
        self.calibration = Calibration.from_metadata(self.metadata.get("calibration"),
                                                     self.classes)

    def _detector(self) -> FaceDetector:
        if self.detector is None:
            self.detector = make_detector()
        return self.detector

    def predict_batch(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) for 48x48 uint8 gray crops (N, 48, 48), in one session call:
        the mean over each face's views (``tta``: the face alone, with its mirror, or ten)."""
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise FercnnError(f"faces must be {IMAGE_SIZE}x{IMAGE_SIZE}, got "
                              f"{faces.shape[1]}x{faces.shape[2]}")
        views = views_for(faces, self.tta)
        # one float copy, scaled in place: a one-face call of the tiny model is ~100 us
        x = (np.concatenate(views) if len(views) > 1 else faces)[:, None].astype(np.float32)
        x *= np.float32(self.scale)
        probabilities = self.session.run(None, {self.input_name: x})[0]
        if len(views) == 1:
            return probabilities
        return probabilities.reshape(len(views), len(faces), -1).mean(axis=0)

    def faces(self, image, boxes: list[Box] | None = None, detect: bool = True,
              color: str = "bgr") -> tuple[np.ndarray, list[Face]]:
        """The gray image and its face boxes: given, detected, or the whole image. The
        detector sees the colour image (BlazeFace reads RGB); the model reads gray."""
        return self._find(image, boxes, detect, color)[1:]

    def _find(self, image, boxes: list[Box] | None, detect: bool,
              color: str) -> tuple[np.ndarray, np.ndarray, list[Face]]:
        """:meth:`faces`, with the image as loaded (colour where it has colour) first."""
        loaded = load_image(image, color)
        gray = to_gray(loaded)
        if boxes is not None:
            found = [Face(tuple(int(v) for v in box)) for box in boxes]
        elif detect:
            colour = loaded.ndim == 3 and loaded.shape[2] == 3 and loaded.dtype == np.uint8
            found = self._detector().detect(loaded if colour else gray)
        else:
            found = [Face((0, 0, gray.shape[1], gray.shape[0]))]
        return loaded, gray, found

    def crop(self, gray: np.ndarray, face: Face, whole: bool = False) -> np.ndarray:
        """The model's 48x48 view of one face: framed as FER-2013's from its keypoints' box
        (turned upright with ``align``), else a square around the box with ``margin``."""
        if face.keypoints is not None:
            return align_face(gray, face, rotate=self.align)
        return crop_face(gray, face.box, margin=0.0 if whole else self.margin)

    def predict(self, image, boxes: list[Box] | None = None, detect: bool = True,
                color: str = "bgr") -> list[FaceResult]:
        """Every face in ``image`` with its emotion; an empty list when none is found."""
        return self.predict_many([image], boxes=boxes, detect=detect, color=color)[0]

    def predict_many(self, images: list, boxes: list[Box] | None = None, detect: bool = True,
                     color: str = "bgr") -> list[list[FaceResult]]:
        """Like :meth:`predict` for several images, all faces through one batched call."""
        per_image, crops, views, shares = [], [], [], []
        whole = not detect and boxes is None
        for image in images:
            loaded, gray, found = self._find(image, boxes, detect, color)
            per_image.append(found)
            crops += [self.crop(gray, f, whole) for f in found]
            if self.photo_reader is not None:
                colour = _colour_image(loaded, gray)
                for face in found:
                    shares.append(self.photo_reader.share(face))
                    views.append(self._reader_view(colour, face, whole) if shares[-1] else None)
        probabilities = self.predict_batch(np.stack(crops)) if crops else np.zeros((0, 7))
        # the prior moves the model's own reading, before the photo reader (whose training
        # mix is not FER-2013's) is blended in
        probabilities = shift_prior(probabilities, prior_weights(self.prior, self.classes),
                                    self.calibration)
        if any(shares):
            probabilities = self._blend_reader(probabilities, views, np.array(shares))
        results, i = [], 0
        for found in per_image:
            row = []
            for face in found:
                p = probabilities[i]
                i += 1
                row.append(FaceResult(face.box, self.classes[int(p.argmax())],
                                      {c: float(v) for c, v in zip(self.classes, p,
                                                                   strict=True)},
                                      face.score))
            results.append(row)
        return results

    def _reader_view(self, colour: np.ndarray, face: Face, whole: bool) -> np.ndarray:
        """The photo reader's crop; for a whole image taken as the face, the image itself."""
        if whole:
            x, y, w, h = face.box
            side = max(w, h) * BOX_WIDTH / READER_SIZE  # the reader's framing adds a margin
            face = Face((x + w / 2 - side / 2, y + h / 2 - side / 2, side, side))
        return self.photo_reader.crop(colour, face)

    def _blend_reader(self, probabilities: np.ndarray, views: list,
                      shares: np.ndarray) -> np.ndarray:
        """The members' probabilities with the photo reader's blended in where it has a
        share (faces larger than FER-2013's), in one reader call."""
        read = shares > 0
        reader = self.photo_reader.predict(np.stack([v for v in views if v is not None]),
                                           mirror=self.tta != "none")
        probabilities = probabilities.copy()
        probabilities[read] = blend(probabilities[read], reader, shares[read])
        return probabilities
