"""BlazeFace, MediaPipe's neural face detector, run by onnxruntime: boxes, scores, 6 keypoints.

The models (``assets/blazeface_*.onnx``, Apache-2.0) are MediaPipe's face detection tflite files
converted by ``scripts/convert_blazeface.py``. Decoding follows MediaPipe's calculators: SSD
anchors (``ssd_anchors_calculator``), box and keypoint offsets from the anchor centres, clipped
sigmoid scores (``tensors_to_detections_calculator``) and weighted non-maximum suppression
(``non_max_suppression_calculator``, WEIGHTED). The keypoints come in MediaPipe's order:

    0 right eye, 1 left eye, 2 nose tip, 3 mouth centre, 4 right ear tragion, 5 left ear tragion

"right" being the person's right, so in a frontal face keypoint 0 lies left of keypoint 1 in the
image.

The network sees a small square (128 px for the short-range model, 192 px for the full-range
one), so a face of 50 px in a 5000 px photo vanishes when the whole photo is squeezed into it.
Large images are therefore searched as a pyramid: the whole image letterboxed, plus overlapping
square tiles at the scales that bring faces down to ``min_face`` pixels within reach of the
model; the detections of all windows are merged by the same weighted suppression.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from ..errors import FercnnError
from .bundled import ASSETS
from .faces import Face
from .scaling import rescale

KEYPOINTS = ("right eye", "left eye", "nose tip", "mouth", "right ear tragion", "left ear tragion")
RAW_SCORE_LIMIT = 80.0  # MediaPipe clips logits at 100; 80 keeps float32 sigmoid finite


@dataclass(frozen=True)
class ModelSpec:
    """What MediaPipe's graph says about one model: input side and SSD anchor strides."""

    file: str
    size: int
    strides: tuple[int, ...]
    interpolated: bool  # interpolated_scale_aspect_ratio 1.0: two anchors per cell and layer


MODELS = {
    "short": ModelSpec("blazeface_short.onnx", 128, (8, 16, 16, 16), True),
    "full": ModelSpec("blazeface_full.onnx", 192, (4,), False),
}


def ssd_anchors(spec: ModelSpec) -> np.ndarray:
    """Anchor centres (A, 2) in [0, 1], in the model's output order (MediaPipe's
    SsdAnchorsCalculator with fixed anchor size: only the centres matter)."""
    centres = []
    layer = 0
    while layer < len(spec.strides):
        stride = spec.strides[layer]
        repeats = 0
        while layer < len(spec.strides) and spec.strides[layer] == stride:
            repeats += 2 if spec.interpolated else 1
            layer += 1
        cells = spec.size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        xy = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(xy, repeats, axis=0))
    return np.concatenate(centres)


def decode(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, size: int,
           min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Detections above ``min_score`` as (D, 8, 2) points in [0, 1] of the model input (rows:
    top-left, bottom-right, then the 6 keypoints) and their (D,) scores."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
    keep = scores >= min_score
    raw = raw.reshape(-1, 8, 2)[keep] / size
    centres = anchors[keep]
    half = raw[:, 1] / 2
    mid = raw[:, 0] + centres
    points = np.empty_like(raw)
    points[:, 0] = mid - half
    points[:, 1] = mid + half
    points[:, 2:] = raw[:, 2:] + centres[:, None]
    valid = np.all(half > 0, axis=1)
    return points[valid], scores[keep][valid]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection over union of one (2, 2) corner box with (D, 2, 2) boxes."""
    low = np.maximum(box[0], boxes[:, 0])
    high = np.minimum(box[1], boxes[:, 1])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area = np.prod(box[1] - box[0])
    areas = np.prod(boxes[:, 1] - boxes[:, 0], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-12)


def weighted_nms(points: np.ndarray, scores: np.ndarray,
                 threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED suppression: each kept detection is the score-weighted mean of all
    detections overlapping it by more than ``threshold`` IoU (keeping the best one's score),
    which steadies boxes and keypoints more than plain suppression."""
    order = np.argsort(-scores, kind="stable")
    points, scores = points[order], scores[order]
    merged, kept = [], []
    while len(scores):
        near = iou(points[0, :2], points[:, :2]) > threshold
        near[0] = True
        weights = scores[near][:, None, None]
        merged.append((points[near] * weights).sum(axis=0) / weights.sum())
        kept.append(scores[0])
        points, scores = points[~near], scores[~near]
    if not kept:
        return np.zeros((0, 8, 2), np.float32), np.zeros(0, np.float32)
    return np.stack(merged), np.array(kept, np.float32)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 gray (H, W) or BGR (H, W, 3) as RGB, the order the network was trained on."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    raise FercnnError(f"expected a gray (H, W) or BGR (H, W, 3) image, got shape {image.shape}")


def window(level: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray:
    """The ``size`` square at (x0, y0) of a pyramid level, black where it leaves the image."""
    h, w = level.shape[:2]
    crop = level[max(y0, 0):min(y0 + size, h), max(x0, 0):min(x0 + size, w)]
    if crop.shape[:2] == (size, size):
        return crop
    top, left = max(-y0, 0), max(-x0, 0)
    bottom, right = size - top - crop.shape[0], size - left - crop.shape[1]
    return cv2.copyMakeBorder(crop, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """The image scaled by ``scale``, without aliasing when it shrinks."""
    h, w = image.shape[:2]
    return rescale(image, (max(round(w * scale), 1), max(round(h * scale), 1)))


def tile_starts(length: int, size: int, overlap: int) -> list[int]:
    """Evenly spread starts of ``size`` tiles covering ``length`` with at least ``overlap``."""
    if length <= size:
        return [0]
    count = math.ceil((length - overlap) / (size - overlap))
    return [round(i * (length - size) / (count - 1)) for i in range(count)]


def model_path(name: str) -> Path:
    """The bundled ONNX file of a model ("short" or "full")."""
    return ASSETS / MODELS[name].file


@dataclass(frozen=True)
class Window:
    """One square a network looks at: its model, pyramid level ``scale`` and the square's
    origin on that level."""

    model: str
    scale: float
    x: int
    y: int
    tile: bool  # a tile (drop faces cut by its inner edges) rather than the whole image
    min_width: float = 0.0  # drop boxes narrower than this share of the square


def session(name: str) -> ort.InferenceSession:
    """A one-thread CPU session: the detector runs its windows side by side instead
    (``BlazeFaceDetector``), which uses the cores better than threads within one small net."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path(name)), options, providers=["CPUExecutionProvider"])


class BlazeFaceDetector:
    """Finds faces of every size with both BlazeFace models.

    The short-range model (128 px input) looks at the whole image letterboxed with a black
    border of ``margin`` on each side: it finds faces from about a seventh of the frame up to
    faces filling a crop (the border keeps the chin inside its view). The full-range model
    (192 px) looks at the whole image when smaller faces could be there, and at overlapping
    tiles on a pyramid when the image is too large for a ``min_face``-pixel face (box width
    in original pixels) to reach it at ``face_px`` pixels. Its range within a tile is about
    ``face_px`` to the tile overlap, so pyramid levels are ``level_step`` apart.

    The windows run ``threads`` at a time, one onnxruntime thread each. These nets' layers are
    too small to share between threads: the full-range model took 5.2 ms a call on two threads
    and 5.3 on one, as its threads sleep between layers (letting them spin instead made a photo
    2x slower, as the sessions' spinning threads took the cores from each other). Two windows
    at once keep both cores busy: a 10-megapixel photo's 96 windows took 287 ms instead of
    534 (benchmarks/results/detection_photos-avx2.md).
    """

    short_share = 0.25  # below this share of its square, short-range boxes are loose: the
    # full-range model takes over (it is reliable from ~14 px to beyond 0.3 of its square)
    overlap = 64  # tile overlap in input pixels: the largest face a tile level must hold whole

    def __init__(self, min_score: float = 0.5, min_score_full: float = 0.65,
                 min_face: int = 48, threads: int = 2,
                 nms_threshold: float = 0.3, margin: float = 0.25, face_px: float = 18.0,
                 level_step: float = 3.0, drop_below: int = 0) -> None:
        self.min_scores = {"short": min_score, "full": min_score_full}
        # a face narrower than this is left out even where found (an explicit --min-face);
        # by default a small photo's face is kept whatever its size
        self.drop_below = drop_below
        self.min_face, self.nms_threshold = min_face, nms_threshold
        self.margin, self.face_px, self.level_step = margin, face_px, level_step
        self.anchors = {name: ssd_anchors(spec) for name, spec in MODELS.items()}
        self.sessions = {name: session(name) for name in MODELS}
        self.pool = ThreadPoolExecutor(threads, "fercnn-blazeface") if threads > 1 else None

    def centred(self, model: str, height: int, width: int, margin: float) -> Window:
        """The whole image letterboxed into the model's square, with a border of ``margin``."""
        size = MODELS[model].size
        scale = size / (max(height, width) * (1 + 2 * margin))
        return Window(model, scale, round((width * scale - size) / 2),
                      round((height * scale - size) / 2), False)

    def plan(self, height: int, width: int) -> list[Window]:
        """The windows searched in an image of this size, coarse to fine."""
        side = max(height, width)
        short = self.centred("short", height, width, self.margin)
        if self.min_face >= self.short_share * side * (1 + 2 * self.margin):
            return [short]
        windows = [dataclasses.replace(short, min_width=self.short_share)]
        least = 0.7 * self.face_px / MODELS["full"].size  # smaller: junk from too coarse a level
        whole = dataclasses.replace(self.centred("full", height, width, 0.0), min_width=least)
        windows.append(whole)
        size = MODELS["full"].size
        scale = self.face_px / self.min_face
        levels = []
        while scale > whole.scale * 1.5:
            levels.append(scale)
            scale /= self.level_step
        for scale in reversed(levels):
            for y in tile_starts(round(height * scale), size, self.overlap):
                for x in tile_starts(round(width * scale), size, self.overlap):
                    windows.append(Window("full", scale, x, y, True, least))
        return windows

    def infer(self, model: str, square: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Decoded detections of one RGB input square (size x size x 3 uint8)."""
        tensor = square.astype(np.float32).transpose(2, 0, 1)[None] * (1 / 127.5) - 1.0
        run = self.sessions[model]
        raw, logits = run.run(None, {run.get_inputs()[0].name: tensor})
        return decode(raw, logits, self.anchors[model], MODELS[model].size,
                      self.min_scores[model])

    def search(self, win: Window, levels: dict[float, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The detections of one window, as points in the image's pixels and scores."""
        level = levels[win.scale]
        size = MODELS[win.model].size
        points, score = self.infer(win.model, window(level, win.x, win.y, size))
        keep = points[:, 1, 0] - points[:, 0, 0] >= win.min_width
        if win.tile:
            keep &= uncut(points, win, size, level.shape[:2])
        return (points[keep] * size + (win.x, win.y)) / win.scale, score[keep]

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a uint8 gray or BGR image, left to right, boxes in its pixels."""
        if image.dtype != np.uint8 or image.size == 0:
            raise FercnnError("expected a non-empty uint8 image")
        rgb = to_rgb(image)
        height, width = rgb.shape[:2]
        windows = self.plan(height, width)
        levels = {scale: resize(rgb, scale) for scale in {win.scale for win in windows}}
        search = functools.partial(self.search, levels=levels)
        run_all = self.pool.map if self.pool is not None and len(windows) > 1 else map
        found, scores = zip(*run_all(search, windows), strict=True)
        points, score = weighted_nms(np.concatenate(found), np.concatenate(scores),
                                     self.nms_threshold)
        faces = [to_face(p, s, height, width) for p, s in zip(points, score, strict=True)]
        return sorted((f for f in faces if f.box[2] > 0 and f.box[3] > 0
                       and f.box[2] >= self.drop_below),
                      key=lambda f: (f.box[0], f.box[1]))


def uncut(points: np.ndarray, win: Window, size: int, shape: tuple[int, int]) -> np.ndarray:
    """Which tile detections stay clear of the tile's inner edges: a face cut by an edge is
    found whole by the overlapping neighbour tile or a coarser level."""
    edge = 2 / size
    ok = np.ones(len(points), bool)
    for axis, start, length in ((0, win.x, shape[1]), (1, win.y, shape[0])):
        if start > 0:
            ok &= points[:, 0, axis] > edge
        if start + size < length:
            ok &= points[:, 1, axis] < 1 - edge
    return ok


def to_face(points: np.ndarray, score: float, height: int, width: int) -> Face:
    """A Face with its box rounded outwards and clipped to the image."""
    x0, y0 = (int(v) for v in np.floor(np.maximum(points[0], 0)))
    x1 = int(np.ceil(min(points[1, 0], width)))
    y1 = int(np.ceil(min(points[1, 1], height)))
    return Face(box=(x0, y0, x1 - x0, y1 - y0), score=float(score),
                keypoints=points[2:].astype(np.float32))
