"""The models a server offers, by name, each loaded once per worker process.

Clients choose among names only (the bundled ``default``, ``accurate`` and ``tiny``, and the
file given to ``--model``), never a path: a request cannot make the server open a file.
Per-request options (TTA, detector, smallest face, alignment, the photo reader) go on a shallow
copy of the cached Recognizer that shares its onnxruntime sessions: onnxruntime runs one
session from several threads safely, and loading a session per request would cost more than
recognising."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import FercnnError
from ..recognition import BUNDLED_MODELS, FaceDetector, Recognizer
from ..recognition.bundled import model_path
from ..recognition.priors import TRAINED_ON
from ..recognition.recognizer import make_detector
from .errors import ApiError


@dataclass(frozen=True)
class Options:
    """What a request may choose, as in ``fercnn predict``."""

    model: str | None = None
    tta: str = "mirror"
    detect: bool = True
    detector: str = "blazeface"
    min_face: int | None = None
    align: bool = True
    photo_reader: bool = True  # where the model has one (the bundled default and accurate)
    prior: str = TRAINED_ON  # recognition/priors.py


class _Serialized:
    """A detector whose calls take turns: OpenCV does not promise that one Haar cascade may
    run from several threads at once."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector, self.lock = detector, threading.Lock()

    def detect(self, image):
        with self.lock:
            return self.detector.detect(image)


class ModelCatalog:
    """Names to model files; Recognizers and detectors made on first use and kept."""

    def __init__(self, default: str = "default") -> None:
        self.paths = {name: path for name, path in BUNDLED_MODELS.items() if path.is_file()}
        if default in BUNDLED_MODELS:
            model_path(default)  # this install lacks it: the one-line error model_path gives
            self.default = default
        else:
            path = model_path(default)
            self.default = path.stem if path.stem not in self.paths else f"file-{path.stem}"
            self.paths[self.default] = path
        self._recognizers: dict[str, Recognizer] = {}
        self._detectors: dict[str, FaceDetector] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str | None) -> str:
        """A requested model's name; 404 for a name this server does not offer."""
        name = self.default if name is None else name
        if name not in self.paths:
            raise ApiError(404, f"no model named {name[:80]!r} here; choose one of "
                           f"{', '.join(self.paths)} (GET /v1/models)")
        return name

    def recognizer(self, name: str) -> Recognizer:
        """The cached Recognizer of a resolved name, loaded on first use."""
        with self._lock:
            if name not in self._recognizers:
                self._recognizers[name] = Recognizer(self.paths[name])
            return self._recognizers[name]

    def _detector(self, kind: str) -> FaceDetector:
        with self._lock:
            if kind not in self._detectors:
                found = make_detector(kind)
                self._detectors[kind] = _Serialized(found) if kind == "haar" else found
            return self._detectors[kind]

    def for_request(self, options: Options) -> tuple[str, Recognizer]:
        """The model's name and a Recognizer set up as ``options`` ask."""
        name = self.resolve(options.model)
        view = copy.copy(self.recognizer(name))
        view.tta, view.align, view.prior = options.tta, options.align, options.prior
        if not options.photo_reader:
            view.photo_reader = None
        view.detector = _with_min_face(self._detector(options.detector), options.min_face)
        return name, view

    def describe(self) -> list[dict]:
        """Every model offered, with what its ONNX metadata says about it."""
        rows = []
        for name in self.paths:
            try:
                meta = self.recognizer(name).metadata
            except FercnnError as e:
                rows.append({"name": name, "default": name == self.default, "error": str(e)})
                continue
            rows.append({"name": name, "default": name == self.default,
                         "classes": meta.get("classes"), "model": meta.get("model"),
                         "private_test_accuracy": meta.get("private_test_accuracy"),
                         "quantization": meta.get("quantization"),
                         "file": Path(self.paths[name]).name, "metadata": meta})
        return rows


def _with_min_face(detector: FaceDetector, min_face: int | None) -> FaceDetector:
    """``detector``, or a copy searching faces from ``min_face`` pixels up that shares its
    sessions and cascade: the settings ``make_detector`` gives for that ``--min-face``."""
    if min_face is None:
        return detector
    inner = detector.detector if isinstance(detector, _Serialized) else detector
    changed = copy.copy(inner)
    if hasattr(changed, "drop_below"):  # BlazeFace
        changed.min_face = changed.drop_below = min_face
    else:  # Haar
        changed.min_size = min_face
    if isinstance(detector, _Serialized):
        wrapper = copy.copy(detector)  # the same lock: the cascade is still shared
        wrapper.detector = changed
        return wrapper
    return changed
