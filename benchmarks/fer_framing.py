"""How FER-2013 frames a face, measured with the detector recognition uses (BlazeFace).

FER-2013's faces were cropped by an unknown detector; a photo's face must reach the model framed
the same way. Training faces are upscaled (4x, as a photo's face would be larger) and
re-detected; the box and the eye keypoints are then expressed in the 48x48 crop's pixels. Their
medians are the framing that ``fercnn.recognition.crop`` reproduces: where the box centre sits,
how wide the box is, where the eyes sit and how far apart.

    FERCNN_REAL_DATA=../shared/data python benchmarks/fer_framing.py [--images 1000]

writes benchmarks/results/fer_framing.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np

from fercnn import load_dataset
from fercnn.recognition.blazeface import BlazeFaceDetector

RESULTS = Path(__file__).resolve().parent / "results"
UPSCALE = 4


def measure(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per re-detected face: box centre, width and height, eye midpoint, eye distance and the
    eye line's angle, in the 48x48 crop's pixels (degrees for the angle)."""
    detector = BlazeFaceDetector()
    rows = []
    for image in images:
        big = cv2.resize(image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        faces = detector.detect(big)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        x, y, w, h = (v / UPSCALE for v in face.box)
        right_eye, left_eye = face.keypoints[0] / UPSCALE, face.keypoints[1] / UPSCALE
        mid = (right_eye + left_eye) / 2
        delta = left_eye - right_eye
        rows.append([x + w / 2, y + h / 2, w, h, mid[0], mid[1], np.hypot(*delta),
                     np.degrees(np.arctan2(delta[1], delta[0]))])
    names = ("box_cx", "box_cy", "box_w", "box_h", "eyes_x", "eyes_y", "eye_distance",
             "eye_angle")
    table = np.array(rows, dtype=np.float64)
    return {name: table[:, i] for i, name in enumerate(names)}


def summary(values: dict[str, np.ndarray], total: int) -> dict:
    stats = {name: {"median": round(float(np.median(v)), 3),
                    "p10": round(float(np.percentile(v, 10)), 3),
                    "p90": round(float(np.percentile(v, 90)), 3)}
             for name, v in values.items()}
    found = len(values["box_w"])
    spread = {name: round(float(np.std(values[name]) / np.mean(values[name])), 4)
              for name in ("box_w", "eye_distance")}
    return {"images": total, "faces_found": found, "stats": stats,
            "relative_spread": spread}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--data", default=os.environ.get("FERCNN_REAL_DATA",
                                                         "../shared/data"))
    args = parser.parse_args()
    data = load_dataset(str(Path(args.data) / "fer2013.csv.xz"))
    train = data.split("Training")
    rng = np.random.default_rng(0)
    chosen = rng.choice(len(train.images), size=args.images, replace=False)
    result = summary(measure(train.images[chosen]), args.images)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fer_framing.json").write_text(json.dumps(result, indent=2))
    lines = ["# FER-2013's framing, measured with BlazeFace", "",
             f"{args.images} random Training faces upscaled {UPSCALE}x and re-detected; "
             f"{result['faces_found']} found. Positions in the 48x48 crop's pixels.", "",
             "| measure | median | 10th pct | 90th pct |", "| --- | ---: | ---: | ---: |"]
    for name, s in result["stats"].items():
        lines.append(f"| {name} | {s['median']} | {s['p10']} | {s['p90']} |")
    lines += ["", "Relative spread (std / mean) of the two scale cues: "
              + ", ".join(f"{k} {v}" for k, v in result["relative_spread"].items()), ""]
    (RESULTS / "fer_framing.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
