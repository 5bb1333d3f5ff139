"""Face tracks over a video: the same ``track`` number for the same face from frame to frame,
and each track's probabilities smoothed so that the emotion shown does not flicker.

Matching faces between frames is Norfair's (the ``norfair-enough`` package: the maintained fork
of Tryolabs' norfair, same ``norfair`` module and API): a Kalman filter per face box predicts
where the face will be, detections are matched to those predictions by IoU, and a track that
misses some frames lives on for a while (``MAX_MISSED``), so a face that is briefly lost comes
back with its number. Why this library: its dependencies are numpy, scipy and rich only (no
torch, no OpenCV build of its own). The original norfair (2.3.0) pins numpy<2, which this
project has outgrown; supervision 0.31 no longer ships ByteTrack (it moved to Roboflow's
``trackers``, which requires the non-headless opencv-python that clashes with our
opencv-python-headless) and would bring matplotlib and PyAV into every recognition install.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from norfair import Detection, Tracker

from ..labels import EMOTIONS
from .faces import Box
from .recognizer import FaceResult

# Weight of the newest analysed frame in a track's smoothed probabilities: 0.5 halves the
# weight of older frames at each step, so a change of expression shows within two or three
# analysed frames while a single odd frame no longer flips the emotion shown.
ALPHA = 0.5
# Analysed frames a track survives unmatched (Norfair's hit counter; a face seen once only
# survives a frame or two, an established one this many): blinks and a turned head keep it.
MAX_MISSED = 15
# 1 - IoU above which a detection is not this track's: matched down to an overlap of 0.2 with
# the predicted box, so fast-moving faces stay matched and separate faces stay apart.
MAX_DISTANCE = 0.8


@dataclass
class TrackedFace:
    """A face of one frame with its track: ``emotion`` and ``probabilities`` are the track's
    smoothed ones (what a viewer should see), ``raw`` the frame's own FaceResult."""

    track: int
    box: Box
    emotion: str
    probabilities: dict[str, float]
    raw: FaceResult

    @property
    def score(self) -> float | None:
        return self.raw.score


class FaceTracker:
    """Track numbers (1, 2, ... in order of appearance) and smoothed probabilities for the
    faces of successive analysed frames of one video; feed it every analysed frame in order,
    those without faces too, so that lost faces age."""

    def __init__(self, alpha: float = ALPHA, max_missed: int = MAX_MISSED,
                 max_distance: float = MAX_DISTANCE) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], not {alpha}")
        self.alpha = alpha
        # initialization_delay=0: every detected face gets its number at once, as every face
        # of the frame is reported (and written to the CSV) from its first frame on.
        self.tracker = Tracker(distance_function="iou", distance_threshold=max_distance,
                               hit_counter_max=max_missed, initialization_delay=0)
        self.smoothed: dict[int, np.ndarray] = {}
        self.last_frame: int | None = None

    def update(self, results: list[FaceResult], frame_index: int) -> list[TrackedFace]:
        """The faces of frame ``frame_index``, in the order given, each with its track."""
        period = 1 if self.last_frame is None else max(1, frame_index - self.last_frame)
        self.last_frame = frame_index
        # each detection carries (frame, index): a track's last detection then tells whether,
        # and to which face, it was matched in this frame
        detections = [Detection(_corners(r.box), data=(frame_index, i))
                      for i, r in enumerate(results)]
        self.tracker.update(detections or None, period=period)
        track_of = {o.last_detection.data: o.id for o in self.tracker.tracked_objects}
        alive = {o.id for o in self.tracker.tracked_objects}
        self.smoothed = {k: v for k, v in self.smoothed.items() if k in alive}
        return [self._smooth(track_of[(frame_index, i)], r) for i, r in enumerate(results)]

    def _smooth(self, track: int, result: FaceResult) -> TrackedFace:
        """Exponential smoothing per track: new = alpha * frame + (1 - alpha) * previous."""
        p = np.array([result.probabilities.get(e, 0.0) for e in EMOTIONS], np.float64)
        previous = self.smoothed.get(track)
        s = p if previous is None else self.alpha * p + (1 - self.alpha) * previous
        self.smoothed[track] = s
        probabilities = {e: float(v) for e, v in zip(EMOTIONS, s, strict=True)}
        return TrackedFace(track=track, box=result.box, emotion=EMOTIONS[int(np.argmax(s))],
                           probabilities=probabilities, raw=result)


def _corners(box: Box) -> np.ndarray:
    """Norfair's IoU distance wants a box as its two corners, [[x1, y1], [x2, y2]]."""
    x, y, w, h = (float(v) for v in box)
    return np.array([[x, y], [x + w, y + h]])
