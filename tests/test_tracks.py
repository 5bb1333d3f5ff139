"""Face tracks in videos: the same number for the same face from frame to frame, and smoothed
emotions that do not flicker. Synthetic boxes for the tracker itself, then a short video of
the bundled portrait's face drifting across the picture, end to end."""

from __future__ import annotations

import csv

import cv2
import numpy as np

from fercnn.labels import EMOTIONS
from fercnn.recognition import DEMO_PHOTO, FaceResult, Recognizer
from fercnn.recognition.tracks import FaceTracker
from fercnn.recognition.video import CSV_FIELDS, draw_timeline, process_video


def face(box: tuple[int, int, int, int], **probabilities: float) -> FaceResult:
    """A FaceResult as the Recognizer gives it: ``face(box, happy=0.7, neutral=0.3)``."""
    p = {e: 0.0 for e in EMOTIONS} | (probabilities or {"neutral": 1.0})
    return FaceResult(box=box, emotion=max(p, key=p.get), probabilities=p)


def test_two_faces_keep_their_numbers_and_a_face_missing_two_frames_its_own():
    tracker = FaceTracker()
    seen: dict[str, set[int]] = {"a": set(), "b": set()}
    for frame in range(30):  # a moves right along the top, b left along the bottom: they pass
        a, b = face((10 + 8 * frame, 20, 50, 50)), face((260 - 8 * frame, 150, 50, 50))
        faces = {"b": b} if frame in (12, 13) else {"a": a, "b": b}
        tracked = tracker.update(list(faces.values()), frame)
        assert [t.box for t in tracked] == [f.box for f in faces.values()]  # order kept
        for name, t in zip(faces, tracked, strict=True):
            seen[name].add(t.track)
    assert seen == {"a": {1}, "b": {2}}


def test_faces_crossing_paths_keep_their_numbers():
    """Two faces moving diagonally through each other: the predicted motion tells them apart
    where their boxes overlap."""
    tracker = FaceTracker()
    tracks = []
    for frame in range(30):
        a = face((10 + 8 * frame, 10 + 5 * frame, 50, 50))
        b = face((250 - 8 * frame, 10 + 5 * frame, 50, 50))
        tracks.append([t.track for t in tracker.update([a, b], frame)])
    assert tracks == [[1, 2]] * 30


def test_every_nth_frame_and_frames_without_faces():
    """Analysing every 5th frame, the face moves 5x as far between updates and keeps its
    number; after a long absence it is a new face."""
    tracker = FaceTracker()
    numbers = {t.track for frame in range(0, 60, 5)
               for t in tracker.update([face((20 + 3 * frame, 40, 60, 60))], frame)}
    assert numbers == {1}
    for frame in range(60, 60 + 5 * 40, 5):  # 40 analysed frames without a face
        assert tracker.update([], frame) == []
    assert [t.track for t in tracker.update([face((200, 40, 60, 60))], 260)] == [2]


def test_smoothing_holds_the_emotion_through_flicker():
    """The frames alternate between a clear "happy" and a weak "neutral": the raw emotion
    flips every frame, the smoothed one stays happy."""
    tracker = FaceTracker()
    raw, smoothed = [], []
    for frame in range(20):
        p = {"happy": 0.8, "neutral": 0.2} if frame % 2 == 0 else {"happy": 0.4, "neutral": 0.6}
        [t] = tracker.update([face((100, 100, 60, 60), **p)], frame)
        raw.append(t.raw.emotion)
        smoothed.append(t.emotion)
        assert abs(sum(t.probabilities.values()) - 1) < 1e-9
    assert set(raw) == {"happy", "neutral"}
    assert set(smoothed) == {"happy"}


def test_smoothing_follows_a_lasting_change_within_two_frames():
    tracker = FaceTracker()  # alpha 0.5: new = (frame + previous) / 2
    for frame in range(10):
        [t] = tracker.update([face((100, 100, 60, 60), happy=0.9, sad=0.1)], frame)
    [t] = tracker.update([face((100, 100, 60, 60), happy=0.1, sad=0.9)], 10)
    assert abs(t.probabilities["happy"] - 0.5) < 1e-9 and t.emotion == "happy"  # a tie
    [t] = tracker.update([face((100, 100, 60, 60), happy=0.1, sad=0.9)], 11)
    assert t.emotion == "sad" and abs(t.probabilities["sad"] - 0.7) < 1e-9


def moving_face_video(path, frames: int = 30) -> None:
    """The portrait's face, shrunk to about 70 px, drifting right and down on a gray frame."""
    crop = cv2.resize(cv2.imread(str(DEMO_PHOTO))[27:207, 143:313], (110, 116))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    assert writer.isOpened()
    for i in range(frames):
        frame = np.full((240, 320, 3), 120, np.uint8)
        x, y = 10 + 6 * i, 60 + i
        frame[y:y + 116, x:x + 110] = crop
        writer.write(frame)
    writer.release()


def test_a_moving_face_is_one_track_in_the_csv(tmp_path):
    from fercnn.cli import main

    video, table = tmp_path / "moving.mp4", tmp_path / "faces.csv"
    moving_face_video(video)
    assert main(["video", str(video), "--csv", str(table), "--out", str(tmp_path / "a.mp4")]) == 0
    with open(table, newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == CSV_FIELDS
    assert CSV_FIELDS[:4] == ("frame", "time", "face", "track")
    assert [int(r["frame"]) for r in rows] == list(range(30))  # a face in every frame
    assert {r["track"] for r in rows} == {"1"}
    assert all(r["smoothed_emotion"] in EMOTIONS and r["emotion"] in EMOTIONS for r in rows)
    assert (tmp_path / "faces-timeline.png").read_bytes().startswith(b"\x89PNG")
    summary = process_video(Recognizer(), video, every=3)
    assert summary["tracks"] == 1 and summary["analysed"] == summary["faces"] == 10


def test_the_timeline_has_a_panel_per_track(tmp_path):
    def rows(tracks: int) -> list[dict]:
        return [{"frame": f, "time": f / 10, "track": t, **{e: 1 / 7 for e in EMOTIONS}}
                for f in range(20) for t in range(1, tracks + 1)]

    heights = []
    for tracks in (0, 1, 2, 12):  # none, one, two, more than are drawn
        draw_timeline(rows(tracks), tmp_path / f"{tracks}.png")
        heights.append(cv2.imread(str(tmp_path / f"{tracks}.png")).shape[0])
    assert heights[0] == heights[1] == 320
    assert heights[1] < heights[2] < heights[3]
