"""Emotions over a video or a camera stream: per-frame faces, an annotated video, a CSV and a
timeline chart. OpenCV reads and writes the frames; recognition is :class:`Recognizer`'s."""

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

CSV_FIELDS = ("frame", "time", "face", "x", "y", "w", "h", "emotion", *EMOTIONS)


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
    """Run ``recognizer`` on every ``every``-th frame; annotate all frames with the latest faces.

    Returns a summary: frames read, frames analysed, faces found, emotion counts.
    """
    if every < 1:
        raise FercnnError("--every must be at least 1")
    for path in (out, csv_path, timeline):
        if path is not None:
            _check_writable(path)
    capture = open_capture(source)
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer, rows, faces = None, [], []
    frames = analysed = 0
    try:
        while max_frames is None or frames < max_frames:
            ok, frame = capture.read()
            if not ok:
                break
            if frames % every == 0:
                faces = recognizer.predict(frame)
                analysed += 1
                rows += [{"frame": frames, "time": round(frames / fps, 3), "face": i,
                          "x": f.box[0], "y": f.box[1], "w": f.box[2], "h": f.box[3],
                          "emotion": f.emotion,
                          **{e: round(f.probabilities[e], 5) for e in EMOTIONS}}
                         for i, f in enumerate(faces)]
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
            "emotions": dict(Counter(r["emotion"] for r in rows).most_common())}


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
    """Each emotion's probability over time (mean over the faces of a frame), one line each."""
    width, height = size
    left, right, top, bottom = 60, 110, 20, 40
    canvas = np.full((height, width, 3), 255, np.uint8)
    frames = sorted({r["frame"] for r in rows})
    times = {r["frame"]: r["time"] for r in rows}
    end = max([times[f] for f in frames] + [1e-6])
    plot_w, plot_h = width - left - right, height - top - bottom
    cv2.rectangle(canvas, (left, top), (left + plot_w, top + plot_h), (0, 0, 0), 1)
    for fraction in (0.0, 0.5, 1.0):
        y = int(top + plot_h * (1 - fraction))
        cv2.putText(canvas, f"{fraction:.1f}", (left - 35, y + 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, f"time (s), 0 - {end:.1f}", (left, height - 12),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for i, emotion in enumerate(EMOTIONS):
        points = []
        for frame in frames:
            values = [r[emotion] for r in rows if r["frame"] == frame]
            x = left + int(plot_w * times[frame] / end)
            points.append((x, int(top + plot_h * (1 - float(np.mean(values))))))
        if len(points) > 1:
            cv2.polylines(canvas, [np.array(points, np.int32)], False, COLORS[emotion], 2,
                          cv2.LINE_AA)
        elif points:
            cv2.circle(canvas, points[0], 3, COLORS[emotion], -1)
        cv2.putText(canvas, emotion, (left + plot_w + 10, top + 16 + 18 * i),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, COLORS[emotion], 1, cv2.LINE_AA)
    if not cv2.imwrite(str(path), canvas):
        raise FercnnError(f"{path}: cannot write image")
