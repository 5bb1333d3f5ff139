"""Haar detection settings: what a larger scale step or minimum face size costs in faces found,
and what it saves in time.

    python benchmarks/detection.py [--data fer2013.csv.xz]

Recall is measured on scenes built from real faces: 400 PublicTest faces, each enlarged to a
random 40-220 px and pasted four to a 640x480 blurred-noise scene. A face counts as found when a
detection's centre lies inside it and its width is 0.5-1.3x the face's. FER crops are tight (the
chin and forehead are cut), which the cascade dislikes, so absolute recall is low; the settings
are compared with each other. Time is the median detection time on the bundled 512x512
portrait. Results go to benchmarks/results/detection.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from fercnn.data import load_dataset
from fercnn.recognition import DEMO_PHOTO, HaarDetector, to_gray

RESULTS = Path(__file__).resolve().parent / "results"
CORNERS = [(10, 10), (330, 10), (10, 250), (330, 250)]


def make_scenes(faces: np.ndarray, seed: int = 0) -> list[tuple[np.ndarray, list]]:
    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(0, len(faces) - 3, 4):
        noise = rng.integers(60, 200, (480, 640)).astype(np.uint8)
        canvas = cv2.GaussianBlur(noise, (0, 0), 6)
        truth = []
        for face, (x, y) in zip(faces[i:i + 4], CORNERS, strict=True):
            side = int(rng.integers(40, 221))
            canvas[y:y + side, x:x + side] = cv2.resize(face, (side, side),
                                                        interpolation=cv2.INTER_CUBIC)
            truth.append((x, y, side))
        scenes.append((canvas, truth))
    return scenes


def recall(detector: HaarDetector, scenes: list) -> tuple[float, int]:
    found_faces = total = spurious = 0
    for canvas, truth in scenes:
        boxes = [f.box for f in detector.detect(canvas)]
        matched = set()
        for x, y, side in truth:
            total += 1
            for k, (bx, by, bw, bh) in enumerate(boxes):
                cx, cy = bx + bw / 2, by + bh / 2
                if x <= cx <= x + side and y <= cy <= y + side and 0.5 * side <= bw <= 1.3 * side:
                    matched.add(k)
                    found_faces += 1
                    break
        spurious += len(boxes) - len(matched)
    return found_faces / total, spurious


def photo_ms(detector: HaarDetector, gray: np.ndarray, repeats: int = 9) -> float:
    detector.detect(gray)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        detector.detect(gray)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    args = parser.parse_args()
    faces = load_dataset(args.data).split("PublicTest").images[:400]
    scenes = make_scenes(faces)
    gray = to_gray(cv2.imread(str(DEMO_PHOTO)))
    rows = []
    for scale_factor in (1.1, 1.2):
        for min_size in (24, 40, 48):
            detector = HaarDetector(scale_factor=scale_factor, min_size=min_size)
            found, spurious = recall(detector, scenes)
            rows.append({"scale_factor": scale_factor, "min_size": min_size,
                         "recall": round(found, 4), "spurious_boxes": spurious,
                         "portrait_ms": round(photo_ms(detector, gray), 2)})
            print(rows[-1])
    default = HaarDetector()
    base = next(r for r in rows if r["scale_factor"] == 1.1 and r["min_size"] == 24)
    result = {"machine": platform.processor() or platform.machine(), "faces": 4 * len(scenes),
              "default": {"scale_factor": default.scale_factor, "min_size": default.min_size},
              "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "detection.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| scale factor | min face px | recall | spurious boxes | portrait ms | speed-up |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        mark = " (default)" if (r["scale_factor"], r["min_size"]) == (
            default.scale_factor, default.min_size) else ""
        lines.append(f"| {r['scale_factor']} | {r['min_size']}{mark} | {r['recall']:.3f} | "
                     f"{r['spurious_boxes']} | {r['portrait_ms']:.1f} | "
                     f"{base['portrait_ms'] / r['portrait_ms']:.2f}x |")
    (RESULTS / "detection.md").write_text(
        f"Haar detection on {result['faces']} real FER faces (40-220 px) pasted into scenes, "
        "and time on the bundled 512x512 portrait (2 threads). Speed-up is against scale "
        "1.1 / min 24, the previous default.\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
