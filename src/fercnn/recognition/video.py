"""Emotions over a video or a camera stream: per-frame faces, an annotated video, a CSV and a
timeline chart. OpenCV reads and writes the frames; recognition is :class:`Recognizer`'s, and
:class:`~.tracks.FaceTracker` numbers the faces (the same ``track`` for the same face from
frame to frame) and smooths each track's emotion.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS
from .annotate import COLORS, annotate
from .tracks import FaceTracker, TrackedFace

# One row per face per analysed frame. ``emotion`` and the seven probabilities are the frame's
# own (raw) result; ``smoothed_emotion`` is the track's smoothed one, the one the annotated
# video shows. ``face`` numbers the faces within a frame, ``track`` the same face across frames.
CSV_FIELDS = ("frame", "time", "face", "track", "x", "y", "w", "h", "emotion", *EMOTIONS,
              "smoothed_emotion")
# Tracks drawn in the timeline, one panel each (the longest ones): more are no longer legible.
TIMELINE_TRACKS = 8


def open_capture(source: str | int) -> cv2.VideoCapture:
    # FFmpeg would print its own complaints ("moov atom not found") beside our one-line error.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    # and OpenCV its warnings ("can't open camera by index") for a camera that is not there
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        capture = cv2.VideoCapture(source)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        what = f"camera {source}" if isinstance(source, int) else str(source)
        if not isinstance(source, int) and not Path(source).exists():
            raise FercnnError(f"{source}: no such file")
        raise FercnnError(f"{what}: cannot open as a video")
    return capture


def process_video(recognizer, source: str | int, out: str | Path | None = None,
                  csv_path: str | Path | None = None, timeline: str | Path | None = None,
                  every: int = 1, max_frames: int | None = None) -> dict:
    """Run ``recognizer`` on every ``every``-th frame, track the faces over the analysed
    frames; annotate all frames with the latest faces (track number and smoothed emotion).

    Returns a summary: frames read, frames analysed, faces found, raw emotion counts, and the
    number of distinct face tracks.
    """
    if every < 1:
        raise FercnnError("--every must be at least 1")
    for path in (out, csv_path, timeline):
        if path is not None:
            _check_writable(path)
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer, rows, faces = None, [], []
    tracker = FaceTracker()
    frames = analysed = 0
    try:
        while max_frames is None or frames < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            if frames % every == 0:
                faces = tracker.update(recognizer.predict(frame), frames)
                analysed += 1
                rows += [_row(frames, fps, i, f) for i, f in enumerate(faces)]
            if out is not None:
                if writer is None:
                    writer = _writer(out, fps, frame.shape)
                writer.write(annotate(frame, faces))
            frames += 1
    finally:
        capture.release()
        if writer is not None:
            writer.release()
    if frames == 0:
        raise FercnnError(f"{source}: no frames could be read (empty or corrupt video)")
    if csv_path is not None:
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(rows)
    if timeline is not None:
        draw_timeline(rows, timeline)
    return {"frames": frames, "analysed": analysed, "faces": len(rows), "fps": fps,
            "emotions": dict(Counter(r["emotion"] for r in rows).most_common()),
            "tracks": len({r["track"] for r in rows})}


def _row(frame: int, fps: float, index: int, face: TrackedFace) -> dict:
    """A CSV row: the frame's own emotion and probabilities, and the track's smoothed emotion."""
    raw = face.raw
    x, y, w, h = face.box
    return {"frame": frame, "time": round(frame / fps, 3), "face": index, "track": face.track,
            "x": x, "y": y, "w": w, "h": h, "emotion": raw.emotion,
            **{e: round(raw.probabilities[e], 5) for e in EMOTIONS},
            "smoothed_emotion": face.emotion}


def _check_writable(path: str | Path) -> None:
    """Fail before the video is read, not after minutes of it: the folder is made here."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FercnnError(f"{path}: cannot write here ({e.strerror})") from None
    if Path(path).is_dir() or not os.access(Path(path).parent, os.W_OK):
        raise FercnnError(f"{path}: cannot write here")


def _writer(out: str | Path, fps: float, shape: tuple) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                             (shape[1], shape[0]))
    if not writer.isOpened():
        raise FercnnError(f"{out}: cannot write a video here")
    return writer


def draw_timeline(rows: list[dict], path: str | Path, size: tuple[int, int] = (900, 320)
                  ) -> None:
    """Each emotion's probability over time (the frames' own values, as in the CSV), one line
    per emotion, in one panel per face track: a single chart averaging several people would
    show none of them. The ``TIMELINE_TRACKS`` longest tracks are drawn, in order of
    appearance. ``size``: the chart's width, and its height with one track; more tracks make
    it taller, a panel each."""
    width, height = size
    left, right, top, bottom, gap = 60, 110, 24, 40, 26
    tracks = _longest_tracks(rows, TIMELINE_TRACKS)
    n = max(1, len(tracks))
    panel_h = height - top - bottom if n == 1 else max(100, (height - top - bottom) // 2)
    canvas = np.full((top + n * panel_h + (n - 1) * gap + bottom, width, 3), 255, np.uint8)
    end = max([r["time"] for r in rows] + [1e-6])
    plot_w = width - left - right
    for k, track in enumerate(tracks or [None]):
        series = sorted((r for r in rows if r["track"] == track), key=lambda r: r["frame"])
        _draw_track(canvas, (left, top + k * (panel_h + gap), plot_w, panel_h), series, end,
                    "" if track is None else f"track #{track}")
    for i, emotion in enumerate(EMOTIONS):
        cv2.putText(canvas, emotion, (left + plot_w + 10, top + 16 + 18 * i),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, COLORS[emotion], 1, cv2.LINE_AA)
    hidden = len({r["track"] for r in rows}) - len(tracks)
    note = f"; {hidden} shorter track(s) not drawn, see the CSV" if hidden else ""
    cv2.putText(canvas, f"time (s), 0 - {end:.1f}{note}", (left, canvas.shape[0] - 12),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), canvas):
        raise FercnnError(f"{path}: cannot write image")


def _longest_tracks(rows: list[dict], limit: int) -> list[int]:
    """The ``limit`` tracks with the most rows (earlier ones first on a tie), in order of
    their first frame."""
    counts = Counter(r["track"] for r in rows)
    first: dict[int, int] = {}
    for r in rows:
        first.setdefault(r["track"], r["frame"])
    longest = sorted(counts, key=lambda t: (-counts[t], first[t]))[:limit]
    return sorted(longest, key=first.__getitem__)


def _draw_track(canvas: np.ndarray, panel: tuple[int, int, int, int], series: list[dict],
                end: float, title: str) -> None:
    """One panel: a frame with 0 / 0.5 / 1 marks, the title above, a line per emotion."""
    x0, y0, w, h = panel
    cv2.rectangle(canvas, (x0, y0), (x0 + w, y0 + h), (0, 0, 0), 1)
    for fraction in (0.0, 0.5, 1.0):
        y = int(y0 + h * (1 - fraction))
        cv2.putText(canvas, f"{fraction:.1f}", (x0 - 35, y + 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1, cv2.LINE_AA)
    if title:
        cv2.putText(canvas, title, (x0, y0 - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
    for emotion in EMOTIONS:
        points = [(x0 + int(w * r["time"] / end), int(y0 + h * (1 - float(r[emotion]))))
                  for r in series]
        if len(points) > 1:
            cv2.polylines(canvas, [np.array(points, np.int32)], False, COLORS[emotion], 2,
                          cv2.LINE_AA)
        elif points:
            cv2.circle(canvas, points[0], 3, COLORS[emotion], -1)
