"""Many images at once: ``recognize_paths`` over a pool of processes, results in input order.

Face detection is single-image work that one onnxruntime session cannot spread over many
cores, so a folder of photos goes faster as several processes each holding their own
Recognizer (one thread each) than as one process with more threads. Each worker loads its
Recognizer once (``RecognizerSettings`` travels, the sessions do not: they cannot be pickled),
takes the paths in chunks, and writes annotated copies itself so no image travels back.
One image that cannot be read is a result with an ``error``, never the end of the batch.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

from ..errors import FercnnError
from ..labels import EMOTIONS
from ..tta import tta_mode
from .bundled import model_path
from .priors import TRAINED_ON, check_prior
from .recognizer import FaceResult, Recognizer, image_report, make_detector

# ``predict --csv``: one row per face (``face`` counts from 0 within an image, as the video
# CSV's does); an image without a face has one row with only its path.
CSV_FIELDS = ("path", "face", "x", "y", "w", "h", "emotion", "score", *EMOTIONS)


@dataclass(frozen=True)
class RecognizerSettings:
    """What a worker needs to build the same Recognizer as the caller: plain, picklable values
    (and hashable, so each worker process builds it once, see :func:`cached_recognizer`)."""

    model: str | None = None
    detector: str = "blazeface"
    min_face: int | None = None
    tta: bool | str = "mirror"
    align: bool = True
    detect: bool = True
    threads: int | None = None  # onnxruntime threads per session; None: onnxruntime's choice
    photo_reader: bool = True  # where the model has one (Recognizer's photo_reader=None)
    prior: str = TRAINED_ON

    def build(self) -> Recognizer:
        detector = make_detector(self.detector, self.min_face, threads=self.threads)
        return Recognizer(self.model, detector=detector, threads=self.threads, tta=self.tta,
                          align=self.align, photo_reader=None if self.photo_reader else False,
                          prior=self.prior)


@dataclass
class ImageResult:
    """One image's faces, or why it has none: ``error`` names a file that could not be read."""

    path: str
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        """``predict --json``'s entry for the image."""
        return image_report(self.path, self.faces)

    def csv_rows(self, digits: int = 6) -> list[dict]:
        """``CSV_FIELDS`` rows: one per face, or one with only the path when there is none."""
        if not self.faces:
            return [{"path": self.path}]
        rows = []
        for i, face in enumerate(self.faces):
            x, y, w, h = face.box
            rows.append({"path": self.path, "face": i, "x": x, "y": y, "w": w, "h": h,
                         "emotion": face.emotion,
                         "score": None if face.score is None else round(face.score, digits),
                         **{e: round(face.probabilities[e], digits) for e in EMOTIONS}})
        return rows


Item = tuple[str, str | None]  # an image's path, and where its annotated copy goes (or None)


def recognize_one(recognizer: Recognizer, item: Item, detect: bool = True) -> ImageResult:
    """One image's result; an unreadable image becomes an ``error``, while a copy that cannot
    be written still raises: that is the output folder's fault, true of every image."""
    from .annotate import write_annotated
    from .images import load_image

    path, target = item
    try:
        image = load_image(path)
        faces = recognizer.predict(image, detect=detect)
    except FercnnError as e:
        return ImageResult(path, error=str(e))
    if target is not None:
        write_annotated(image, faces, target)
    return ImageResult(path, faces)


@lru_cache(maxsize=2)
def cached_recognizer(settings: RecognizerSettings) -> Recognizer:
    """The process's Recognizer for ``settings``, built on its first chunk or partition."""
    return settings.build()


def recognize_chunk(settings: RecognizerSettings, items: Sequence[Item]) -> list[ImageResult]:
    """A worker's task: several images with the process's one Recognizer."""
    recognizer = cached_recognizer(settings)
    return [recognize_one(recognizer, item, settings.detect) for item in items]


def recognize_paths(paths: Sequence[str | Path], model: str | Path | None = None,
                    workers: int = 1, *, detector: str = "blazeface",
                    min_face: int | None = None, tta: bool | str = "mirror",
                    align: bool = True, detect: bool = True, photo_reader: bool = True,
                    prior: str = TRAINED_ON, outputs: Sequence[str | Path | None] | None = None,
                    chunk_size: int | None = None) -> Iterator[ImageResult]:
    """An :class:`ImageResult` per path, in the order given, from ``workers`` processes (1: in
    this process, as ``Recognizer().predict`` would). ``outputs``: where to write an annotated
    copy of each image (None for none); ``photo_reader=False`` reads faces with the model alone;
    ``prior``: as Recognizer's. The model and prior are checked here, before any worker
    starts."""
    if workers < 1:
        raise FercnnError(f"workers must be at least 1, not {workers}")
    settings = RecognizerSettings(None if model is None else str(model), detector, min_face,
                                  tta_mode(tta), align, detect, photo_reader=photo_reader,
                                  prior=check_prior(prior))
    targets = outputs if outputs is not None else [None] * len(paths)
    if len(targets) != len(paths):
        raise ValueError(f"{len(paths)} paths but {len(targets)} outputs")
    items = [(str(p), None if t is None else str(t)) for p, t in zip(paths, targets,
                                                                      strict=True)]
    if workers == 1:
        recognizer = settings.build()
        return (recognize_one(recognizer, item, detect) for item in items)
    model_path(settings.model)
    size = chunk_size or max(1, min(16, len(items) // (workers * 4)))
    return _pooled(replace(settings, threads=1), items, workers, size)


def _worker_start() -> None:
    """A worker: one OpenCV thread (the pool is the parallelism), and Ctrl-C left to the
    parent, which stops the pool, instead of a traceback from every process."""
    import cv2

    cv2.setNumThreads(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pooled(settings: RecognizerSettings, items: list[Item], workers: int,
            size: int) -> Iterator[ImageResult]:
    """Chunks handed to a pool, at most ``4 * workers`` ahead of the caller: results stream
    in input order and memory stays bounded however long the list."""
    # spawn, not fork: a parent that has run onnxruntime holds thread pools a fork would copy
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_worker_start)
    pending: deque = deque()
    try:
        for start in range(0, len(items), size):
            pending.append(pool.submit(recognize_chunk, settings, items[start:start + size]))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    except BrokenProcessPool:
        raise FercnnError("a worker process died: out of memory (try fewer workers), or a "
                          "script without `if __name__ == '__main__':`") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
