"""BlazeFace against fercnn's Haar path on real photos: faces found, time, and wild-dev misses.

    FERCNN_REAL_DATA=../shared/data python benchmarks/detection_photos.py [--runs 5]

Photos: ``$FERCNN_REAL_DATA/photos`` (obama_family 4 faces, group_10mpx 31, biden_7mpx 1) and
the bundled 512x512 portrait. Time is the median of ``--runs`` calls after one warm-up, both
detectors with 2 threads (onnxruntime intra-op threads; ``cv2.setNumThreads(2)``), measured
in the same run. Haar is fercnn's current path: a copy at most 1024 px on its longer side,
gray, equalizeHist, scaleFactor 1.1, minNeighbors 5, minSize 40. wild-dev
(``$FERCNN_REAL_DATA/wild-dev``): the share of images where no face is found. For Haar, images
under 64 px are upscaled 4x and under 128 px 2x first (its minSize is 40 px, so a 30-60 px
crop could never match otherwise); BlazeFace gets the images as they are, since it resizes the
whole image to its 128 px input anyway. Results go to benchmarks/results/detection_photos.*.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from host import cpu_description

from fercnn.recognition.blazeface import BlazeFaceDetector

RESULTS = Path(__file__).resolve().parent / "results"
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
    args = parser.parse_args()
    data = Path(os.environ.get("FERCNN_REAL_DATA", "../shared/data"))
    cv2.setNumThreads(THREADS)
    blaze, haar = BlazeFaceDetector(threads=THREADS), Haar()
    images = {"astronaut.png (bundled)": (cv2.imread(str(PORTRAIT)), 1)}
    for name, faces in PHOTOS.items():
        images[name] = (cv2.imread(str(data / "photos" / name), cv2.IMREAD_COLOR), faces)
    rows = []
    for name, (image, faces) in images.items():
        found_b, ms_b = timed(blaze.detect, image, args.runs)
        found_h, ms_h = timed(haar.detect, image, args.runs)
        rows.append({"photo": name, "size": f"{image.shape[1]}x{image.shape[0]}", "faces": faces,
                     "blazeface_found": found_b, "blazeface_ms": round(ms_b, 1),
                     "windows": len(blaze.plan(*image.shape[:2])),
                     "haar_found": found_h, "haar_ms": round(ms_h, 1),
                     "haar_over_blazeface": round(ms_h / ms_b, 2)})
        print(rows[-1], flush=True)
    wild = wild_dev(data / "wild-dev", blaze, haar)
    print(wild)
    result = {"cpu": cpu_description(), "threads": THREADS, "runs": args.runs, "photos": rows,
              "wild_dev": wild}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "detection_photos.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "detection_photos.md").write_text(markdown(result))


def markdown(result: dict) -> str:
    lines = [
        "# Face detection on real photos: BlazeFace vs Haar",
        "",
        f"CPU: {result['cpu']}; {result['threads']} threads; median of {result['runs']} runs "
        "after a warm-up; `python benchmarks/detection_photos.py`.",
        "",
        "| photo | size | faces | BlazeFace found | BlazeFace ms | windows | Haar found | "
        "Haar ms | Haar / BlazeFace |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["photos"]:
        lines.append(f"| {r['photo']} | {r['size']} | {r['faces']} | {r['blazeface_found']} | "
                     f"{r['blazeface_ms']} | {r['windows']} | {r['haar_found']} | "
                     f"{r['haar_ms']} | {r['haar_over_blazeface']} |")
    w = result["wild_dev"]
    lines += [
        "",
        f"wild-dev ({w['images']} images): no face found in {w['blazeface_no_face']:.1%} with "
        f"BlazeFace (images as they are) and {w['haar_no_face']:.1%} with Haar (images under "
        "64 px upscaled 4x, under 128 px 2x, as its 40 px minimum size needs).",
        "",
        "`windows`: the squares BlazeFace runs its networks on (short-range whole image, "
        "full-range whole image, full-range tiles).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
