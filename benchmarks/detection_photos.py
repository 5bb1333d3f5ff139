"""BlazeFace against fercnn's Haar path on real photos: faces found, time, and wild-dev misses.

    FERCNN_REAL_DATA=../shared/data python benchmarks/detection_photos.py [--runs 5] [--tag HOST]

Photos: ``$FERCNN_REAL_DATA/photos`` (obama_family 4 faces, group_10mpx 31, biden_7mpx 1) and
the bundled 512x512 portrait. Time is the median of ``--runs`` calls after one warm-up, both
detectors with 2 threads (BlazeFace: two windows at a time; ``cv2.setNumThreads(2)``), measured
in the same run. Haar is fercnn's current path: a copy at most 1024 px on its longer side,
gray, equalizeHist, scaleFactor 1.1, minNeighbors 5, minSize 40. wild-dev
(``$FERCNN_REAL_DATA/wild-dev``): the share of images where no face is found. For Haar, images
under 64 px are upscaled 4x and under 128 px 2x first (its minSize is 40 px, so a 30-60 px
crop could never match otherwise); BlazeFace gets the images as they are, since it resizes the
whole image to its 128 px input anyway.

Two choices of the detector are timed against what they replaced, in the same run: its windows
run side by side on two threads of one onnxruntime thread each, against one window at a time
(``threads=1``), and its pyramid levels are shrunk by halvings (``fercnn.recognition.scaling``)
against OpenCV's area averaging at the level's size. Results go to
benchmarks/results/detection_photos[-TAG].*.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from host import cpu_description, write_results

from fercnn.recognition.blazeface import BlazeFaceDetector, resize

PORTRAIT = Path(__file__).resolve().parents[1] / "src" / "fercnn" / "assets" / "astronaut.png"
PHOTOS = {"obama_family.jpg": 4, "group_10mpx.jpg": 31, "biden_7mpx.jpg": 1}
THREADS = 2


class Haar:
    """fercnn's Haar path as it stands."""

    def __init__(self) -> None:
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)

    def detect(self, image: np.ndarray) -> list:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        scale = min(1.0, 1024 / max(gray.shape))
        if scale < 1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        found = self.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                              minSize=(40, 40))
        return list(found)


def timed(detect: Callable, image: np.ndarray, runs: int) -> tuple[int, float]:
    """Faces found and the median time in ms (after one warm-up call)."""
    count = len(detect(image))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detect(image)
        times.append((time.perf_counter() - start) * 1000)
    return count, statistics.median(times)


def level_shrink_ms(blaze: BlazeFaceDetector, image: np.ndarray, runs: int) -> tuple[float, float]:
    """The time to make the pyramid levels of ``image`` (RGB, as the detector does): by
    halvings, as the detector does, and with OpenCV's area averaging straight to each size."""
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    scales = {win.scale for win in blaze.plan(*image.shape[:2])}

    def area() -> list:
        h, w = rgb.shape[:2]
        return [cv2.resize(rgb, (max(round(w * s), 1), max(round(h * s), 1)),
                           interpolation=cv2.INTER_AREA) for s in scales]

    return (timed(lambda im: [resize(im, s) for s in scales], rgb, runs)[1],
            timed(lambda im: area(), rgb, runs)[1])


def upscaled(image: np.ndarray) -> np.ndarray:
    side = max(image.shape[:2])
    factor = 4 if side < 64 else 2 if side < 128 else 1
    if factor == 1:
        return image
    return cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


def wild_dev(folder: Path, blaze: BlazeFaceDetector, haar: Haar) -> dict:
    with open(folder / "labels.csv", newline="") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    missed = {"blazeface": 0, "haar": 0}
    for path in paths:
        image = cv2.imread(str(folder / path), cv2.IMREAD_COLOR)
        missed["blazeface"] += not blaze.detect(image)
        missed["haar"] += not haar.detect(upscaled(image))
    return {"images": len(paths), **{f"{k}_no_face": v / len(paths) for k, v in missed.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tag", default=None, help="names the host in the results' file names")
    args = parser.parse_args()
    data = Path(os.environ.get("FERCNN_REAL_DATA", "../shared/data"))
    cv2.setNumThreads(THREADS)
    blaze, haar = BlazeFaceDetector(threads=THREADS), Haar()
    one_at_a_time = BlazeFaceDetector(threads=1)
    images = {"astronaut.png (bundled)": (cv2.imread(str(PORTRAIT)), 1)}
    for name, faces in PHOTOS.items():
        images[name] = (cv2.imread(str(data / "photos" / name), cv2.IMREAD_COLOR), faces)
    rows = []
    for name, (image, faces) in images.items():
        found_b, ms_b = timed(blaze.detect, image, args.runs)
        ms_one = timed(one_at_a_time.detect, image, args.runs)[1]
        found_h, ms_h = timed(haar.detect, image, args.runs)
        halves_ms, area_ms = level_shrink_ms(blaze, image, args.runs)
        rows.append({"photo": name, "size": f"{image.shape[1]}x{image.shape[0]}", "faces": faces,
                     "blazeface_found": found_b, "blazeface_ms": round(ms_b, 1),
                     "one_window_at_a_time_ms": round(ms_one, 1),
                     "windows": len(blaze.plan(*image.shape[:2])),
                     "levels_halvings_ms": round(halves_ms, 2), "levels_area_ms": round(area_ms, 2),
                     "haar_found": found_h, "haar_ms": round(ms_h, 1),
                     "haar_over_blazeface": round(ms_h / ms_b, 2)})
        print(rows[-1], flush=True)
    wild = wild_dev(data / "wild-dev", blaze, haar)
    print(wild)
    result = {"cpu": cpu_description(), "threads": THREADS, "runs": args.runs, "photos": rows,
              "wild_dev": wild}
    write_results("detection_photos", args.tag, result, markdown(result))


def markdown(result: dict) -> list[str]:
    lines = [
        "# Face detection on real photos: BlazeFace vs Haar",
        "",
        f"CPU: {result['cpu']}; {result['threads']} threads; median of {result['runs']} runs "
        "after a warm-up; `python benchmarks/detection_photos.py`.",
        "",
        "| photo | size | faces | BlazeFace found | BlazeFace ms | one window at a time ms "
        "| windows | levels by halvings ms | levels by area ms | Haar found | Haar ms "
        "| Haar / BlazeFace |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["photos"]:
        lines.append(f"| {r['photo']} | {r['size']} | {r['faces']} | {r['blazeface_found']} | "
                     f"{r['blazeface_ms']} | {r['one_window_at_a_time_ms']} "
                     f"({r['one_window_at_a_time_ms'] / r['blazeface_ms']:.2f}x) | "
                     f"{r['windows']} | {r['levels_halvings_ms']} | {r['levels_area_ms']} "
                     f"({r['levels_area_ms'] / r['levels_halvings_ms']:.1f}x) | "
                     f"{r['haar_found']} | {r['haar_ms']} | {r['haar_over_blazeface']} |")
    w = result["wild_dev"]
    lines += [
        "",
        f"wild-dev ({w['images']} images): no face found in {w['blazeface_no_face']:.1%} with "
        f"BlazeFace (images as they are) and {w['haar_no_face']:.1%} with Haar (images under "
        "64 px upscaled 4x, under 128 px 2x, as its 40 px minimum size needs).",
        "",
        "`windows`: the squares BlazeFace runs its networks on (short-range whole image, "
        "full-range whole image, full-range tiles); they run two at a time on two threads, "
        "against one at a time in the next column (the ratio is that time over this one). "
        "`levels`: the pyramid levels the detector makes of the photo, by halvings with area "
        "averaging then bilinear for the rest (what the detector does) and by OpenCV's area "
        "averaging straight to each size (before; the ratio is its time over the halvings').",
    ]
    return lines


if __name__ == "__main__":
    main()
