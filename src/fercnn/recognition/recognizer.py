"""Recognizer: images in, faces with emotions out. numpy, OpenCV, Pillow and onnxruntime only.

One image's way: load (path, array or PIL image) -> gray -> face boxes (detector, given, or the
whole image) -> 48x48 crops -> one onnxruntime call for all faces -> probabilities.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS, IMAGE_SIZE
from ..tta import tta_views
from .bundled import model_path
from .crop import crop_face
from .faces import Box, Face, FaceDetector
from .haar import HaarDetector
from .images import load_image, to_gray


@dataclass
class FaceResult:
    box: Box
    emotion: str
    probabilities: dict[str, float]
    score: float | None = None

    def to_dict(self) -> dict:
        return {"box": list(self.box), "emotion": self.emotion,
                "probabilities": self.probabilities, "score": self.score}


class Recognizer:
    """Emotions of the faces in an image, with an ONNX model exported by ``fercnn export``:
    a path, or the name of a bundled one ("default", the fast one; "accurate")."""

    def __init__(self, model: str | Path | None = None, detector: FaceDetector | None = None,
                 margin: float = 0.1, threads: int | None = None, tta: bool = False) -> None:
        import onnxruntime as ort

        path = model_path(model)
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
