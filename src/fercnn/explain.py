"""Why a model named an emotion: a saliency map over each face's 48x48 crop, and the same map
carried back onto the photo through the crop's framing.

Faces are found and framed by the Recognizer's own path (detector, alignment, crop), so a map
shows what the model read. Exported (ONNX) models are explained by occlusion with onnxruntime
alone; checkpoints and run folders by Grad-CAM (captum) or occlusion through torch, which is
imported only for them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import FercnnError
from .labels import EMOTIONS
from .recognition.bundled import is_onnx, model_path
from .recognition.crop import crop_to_photo
from .recognition.faces import Box
from .recognition.heatmaps import crop_panel, overlay_photo, to_photo
from .recognition.images import load_image, to_gray
from .recognition.occlusion import Saliency, occlusion_maps
from .recognition.recognizer import Recognizer

METHODS = ("gradcam", "occlusion")


def resolve_method(model: str, method: str | None) -> str:
    """The method asked for, else each kind of model's own: Grad-CAM needs the network's
    gradients, which only a checkpoint has; an exported model is explained by occlusion."""
    if method is None:
        return "occlusion" if is_onnx(model) else "gradcam"
    if method not in METHODS:
        raise FercnnError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if method == "gradcam" and is_onnx(model):
        raise FercnnError(f"{model}: Grad-CAM needs a training run or checkpoint (the "
                          "network's gradients); explain an exported model with occlusion")
    return method


def make_saliency(model: str, method: str, checkpoint: dict | None = None,
                  recognizer: Recognizer | None = None) -> Saliency:
    """The ``(faces, targets) -> (maps, probabilities)`` function of ``model`` (a bundled
    name, an .onnx file, a run folder or a checkpoint, given loaded or read here). An ONNX
    model's session is ``recognizer``'s when that runs the same file, else loaded here."""
    if is_onnx(model):
        if recognizer is None or recognizer.path != model_path(model):
            recognizer = Recognizer(model)
        if recognizer.tta != "none":  # a map explains the one view it occludes
            recognizer = copy.copy(recognizer)
            recognizer.tta = "none"
        return lambda faces, targets=None: occlusion_maps(recognizer.predict_batch, faces,
                                                          targets)
    from .training.checkpoint import load_checkpoint
    from .training.saliency import checkpoint_saliency

    return checkpoint_saliency(checkpoint or load_checkpoint(model), method)


@dataclass
class FaceExplanation:
    """One face: where it is, what the model said, and the map of the class explained."""

    box: Box
    emotion: str  # the predicted class
    target: str  # the class the maps explain
    probabilities: np.ndarray  # (7,)
    crop: np.ndarray  # (48, 48) uint8: what the model read
    crop_map: np.ndarray  # (48, 48) in [0, 1]
    photo_map: np.ndarray  # (H, W) in [0, 1]: the crop's map in the photo's pixels
    coverage: np.ndarray  # (H, W): 1 inside the crop's square of the photo

    def to_dict(self) -> dict:
        return {"box": [int(v) for v in self.box], "emotion": self.emotion,
                "target": self.target,
                "probabilities": {e: float(p) for e, p in
                                  zip(EMOTIONS, self.probabilities, strict=True)}}


def explain_photo(photo, finder: Recognizer, saliency: Saliency, target: int | None = None,
                  detect: bool = True) -> list[FaceExplanation]:
    """Every face ``finder`` finds in ``photo`` (a path or an array), with its maps for
    ``target`` (default: each face's predicted class)."""
    gray, faces = finder.faces(photo, detect=detect)
    if not faces:
        return []
    whole = not detect
    crops = np.stack([finder.crop(gray, face, whole) for face in faces])
    targets = None if target is None else np.full(len(faces), target)
    maps, probabilities = saliency(crops, targets)
    explained = []
    for face, crop, crop_map, p in zip(faces, crops, maps, probabilities, strict=True):
        matrix = crop_to_photo(face, rotate=finder.align, margin=0.0 if whole else finder.margin)
        photo_map, coverage = to_photo(crop_map, matrix, gray.shape)
        chosen = int(p.argmax()) if target is None else target
        explained.append(FaceExplanation(face.box, EMOTIONS[int(p.argmax())], EMOTIONS[chosen],
                                         p, crop, crop_map, photo_map, coverage))
    return explained


def write_explanations(photo: np.ndarray, explained: list[FaceExplanation], out: Path,
                       name: Path) -> list[Path]:
    """``NAME-saliency.png`` (the photo with each face's map and box) and, per face,
    ``NAME-faceK.png`` (crop, map, overlay), ``name`` being a path below ``out`` without a
    suffix; the files written."""
    background = photo if photo.dtype == np.uint8 and photo.ndim == 3 else to_gray(photo)
    drawn = overlay_photo(background, [(e.photo_map, e.coverage) for e in explained])
    scale = max(0.4, min(drawn.shape[:2]) / 800)
    for e in explained:
        x, y, w, h = e.box
        cv2.rectangle(drawn, (x, y), (x + w, y + h), (255, 255, 255), 2)
        cv2.putText(drawn, f"{e.emotion} ({e.target} map)", (x, max(12, y - 6)),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    written = [out / name.with_name(f"{name.name}-saliency.png")]
    images = [drawn]
    for k, e in enumerate(explained, start=1):
        written.append(out / name.with_name(f"{name.name}-face{k}.png"))
        images.append(crop_panel(e.crop, e.crop_map))
    for path, image in zip(written, images, strict=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), image):
            raise FercnnError(f"{path}: cannot write image")
    return written


def explain_files(model: str, files: list[tuple[Path, Path]], out: str | Path,
                  method: str | None = None, target: str | None = None,
                  finder: Recognizer | None = None, detect: bool = True) -> list[dict]:
    """Maps for every face of every (photo, output name without suffix) in ``files``,
    written to ``out``; one report entry per photo (its faces, the files written)."""
    method = resolve_method(model, method)
    if finder is None:
        finder = Recognizer(model) if is_onnx(model) else Recognizer()
    saliency = make_saliency(model, method, recognizer=finder)  # one session, not two
    chosen = None if target is None else EMOTIONS.index(target)
    report = []
    for path, name in files:
        photo = load_image(path)
        explained = explain_photo(photo, finder, saliency, chosen, detect)
        written = write_explanations(photo, explained, Path(out), name) if explained else []
        report.append({"image": str(path), "method": method,
                       "faces": [e.to_dict() for e in explained],
                       "files": [str(p) for p in written]})
    return report


def write_mistakes(model: str, checkpoint: dict | None, images: np.ndarray,
                   labels: np.ndarray, probabilities: np.ndarray, path: str | Path,
                   count: int = 16) -> Path | None:
    """A grid of the ``count`` most confident mistakes, each face with the map of the class
    the model wrongly named; None when it made none."""
    from .plots import saliency_grid

    predicted = probabilities.argmax(1)
    wrong = np.flatnonzero(predicted != labels)
    if len(wrong) == 0:
        return None
    worst = wrong[np.argsort(-probabilities[wrong].max(1), kind="stable")[:count]]
    method = resolve_method(model, None)
    maps, _ = make_saliency(model, method, checkpoint)(images[worst], predicted[worst])
    captions = [f"{EMOTIONS[labels[i]]} -> {EMOTIONS[predicted[i]]} "
                f"{probabilities[i].max():.0%}" for i in worst]
    saliency_grid(images[worst], maps, captions, path,
                  title=f"most confident mistakes ({method}: true -> said)")
    return Path(path)

