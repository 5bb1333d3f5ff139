"""Recognizer: images in, faces with emotions out. numpy, OpenCV, Pillow and onnxruntime only.

One image's way: load (path, array or PIL image) -> gray -> face boxes (detector, given, or the
whole image) -> 48x48 crops -> one onnxruntime call for all faces -> probabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import FercnnError
from .faces import Box, Face, FaceDetector, HaarDetector, crop_face, is_deep_gray, pil_gray, to_gray
from .labels import EMOTIONS, IMAGE_SIZE
from .tta import tta_views

ASSETS = Path(__file__).resolve().parent / "assets"
DEFAULT_MODEL = ASSETS / "default.onnx"
# names usable wherever a model file is expected: the fast default and a slower, more accurate
# ensemble (assets/README.md says what each is)
BUNDLED_MODELS = {"default": DEFAULT_MODEL, "accurate": ASSETS / "accurate.onnx"}
DEMO_PHOTO = ASSETS / "astronaut.png"  # NASA, Eileen Collins: public domain (assets/README.md)


@dataclass
class FaceResult:
    box: Box
    emotion: str
    probabilities: dict[str, float]
    score: float | None = None

    def to_dict(self) -> dict:
        return {"box": list(self.box), "emotion": self.emotion,
                "probabilities": self.probabilities, "score": self.score}


def load_image(image, color: str = "bgr") -> np.ndarray:
    """An image as a uint8 array: a path (any format Pillow reads), a numpy array (2-D gray, or
    3-channel in ``color`` order, BGR by default as OpenCV gives) or a PIL image.

    Colour is kept (BGR) so callers can draw on it; :func:`to_gray` makes the model's input.
    16-bit gray files (PNG, TIFF) and float TIFFs are scaled to 8 bits here: Pillow's own
    conversion clips them, and a 16-bit portrait would turn white.
    """
    if isinstance(image, (str, Path)):
        from PIL import Image, ImageOps

        path = Path(image)
        if not path.is_file():
            raise FercnnError(f"{path}: no such file")
        try:
            with Image.open(path) as opened:
                return _pil_to_bgr(ImageOps.exif_transpose(opened))
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise FercnnError(f"{path}: not a readable image ({e})") from None
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] in (3, 4) and color == "rgb":
            image = np.ascontiguousarray(image[:, :, 2::-1])
        return image
    if hasattr(image, "convert"):  # a PIL image
        return _pil_to_bgr(image)
    raise FercnnError(f"cannot read an image from {type(image).__name__}")


def _pil_to_bgr(image) -> np.ndarray:
    if is_deep_gray(image):
        return cv2.cvtColor(pil_gray(image), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


class Recognizer:
    """Emotions of the faces in an image, with an ONNX model exported by ``fercnn export``:
    a path, or the name of a bundled one ("default", the fast one; "accurate")."""

    def __init__(self, model: str | Path | None = None, detector: FaceDetector | None = None,
                 margin: float = 0.1, threads: int | None = None, tta: bool = False) -> None:
        import onnxruntime as ort

        name = "default" if model is None else str(model)
        path = BUNDLED_MODELS.get(name, Path(name))
        if not path.is_file():
            if name in BUNDLED_MODELS:
                raise FercnnError(f"this install has no bundled '{name}' model; pass a model "
                                  "exported with `fercnn export` (--model / Recognizer(path))")
            raise FercnnError(f"{path}: no such model file")
        options = ort.SessionOptions()
        # idle onnxruntime threads otherwise spin for a while after each call and take the
        # cores from the face detector that runs next: a photo took 49 ms instead of 35
        # (benchmarks/results/recognition_speed.md), for 7% less pure batch throughput
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as e:
            raise FercnnError(f"{path}: not a readable ONNX model ({e})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = json.loads(meta["fercnn"]) if "fercnn" in meta else {}
        self.classes = tuple(self.metadata.get("classes", EMOTIONS))
        self.scale = float(self.metadata.get("input", {}).get("scale", 1 / 255))
        self.input_name = self.session.get_inputs()[0].name
        self.detector = detector
        self.margin = margin
        self.path = path
        # ten views of each face, averaged (fercnn.tta): about 1.4 points on PrivateTest for
        # ten times the model's work, still small beside the face detection of a photo
        self.tta = tta

    def _detector(self) -> FaceDetector:
        if self.detector is None:
            self.detector = HaarDetector()
        return self.detector

    def predict_batch(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) for 48x48 uint8 gray crops (N, 48, 48), in one session call;
        with ``tta``, the mean over each face's ten views."""
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise FercnnError(f"faces must be {IMAGE_SIZE}x{IMAGE_SIZE}, got "
                              f"{faces.shape[1]}x{faces.shape[2]}")
        views = tta_views(faces) if self.tta else [faces]
        x = np.concatenate(views)[:, None].astype(np.float32) * np.float32(self.scale)
        probabilities = self.session.run(None, {self.input_name: x})[0]
        return probabilities.reshape(len(views), len(faces), -1).mean(axis=0)

    def faces(self, image, boxes: list[Box] | None = None, detect: bool = True,
              color: str = "bgr") -> tuple[np.ndarray, list[Face]]:
        """The gray image and its face boxes: given, detected, or the whole image."""
        gray = to_gray(load_image(image, color))
        if boxes is not None:
            found = [Face(tuple(int(v) for v in box)) for box in boxes]
        elif detect:
            found = self._detector().detect(gray)
        else:
            found = [Face((0, 0, gray.shape[1], gray.shape[0]))]
        return gray, found

    def predict(self, image, boxes: list[Box] | None = None, detect: bool = True,
                color: str = "bgr") -> list[FaceResult]:
        """Every face in ``image`` with its emotion; an empty list when none is found."""
        return self.predict_many([image], boxes=boxes, detect=detect, color=color)[0]

    def predict_many(self, images: list, boxes: list[Box] | None = None, detect: bool = True,
                     color: str = "bgr") -> list[list[FaceResult]]:
        """Like :meth:`predict` for several images, all faces through one batched call."""
        per_image, crops = [], []
        for image in images:
            gray, found = self.faces(image, boxes, detect, color)
            per_image.append(found)
            whole = not detect and boxes is None
            crops += [crop_face(gray, f.box, margin=0.0 if whole else self.margin)
                      for f in found]
        probabilities = self.predict_batch(np.stack(crops)) if crops else np.zeros((0, 7))
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
