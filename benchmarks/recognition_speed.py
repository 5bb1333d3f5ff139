"""Recognition speed on this CPU: faces/s through the model alone, and whole photos end to end.

    python benchmarks/recognition_speed.py [MODEL.onnx ...] [--threads 2]

(default: the embedded model, its fp32 reference and the bundled "accurate" ensemble)

Model-only throughput feeds 48x48 crops to ``Recognizer.predict_batch`` one at a time and in
batches of 64; end to end runs ``Recognizer.predict`` on the bundled 512x512 portrait and on a
6000x4000 enlargement of it, with the Haar detection timed on its own to show where the time
goes. Each figure is the median of several timed repeats after a warm-up. Results are written to
benchmarks/results/recognition_speed.{json,md}.
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

from fercnn.faces import HaarDetector, to_gray
from fercnn.recognize import BUNDLED_MODELS, DEFAULT_MODEL, DEMO_PHOTO, Recognizer

RESULTS = Path(__file__).resolve().parent / "results"
FP32_REFERENCE = RESULTS.parent.parent / "tests" / "data" / "default-fp32.onnx"


def median_seconds(fn, repeats: int = 7, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(model: Path, threads: int) -> dict:
    recognizer = Recognizer(model, threads=threads)
    faces = np.random.default_rng(0).integers(0, 256, (1024, 48, 48)).astype(np.uint8)
    one = median_seconds(lambda: [recognizer.predict_batch(f) for f in faces[:256]]) / 256
    batched = median_seconds(lambda: [recognizer.predict_batch(faces[i:i + 64])
                                      for i in range(0, 1024, 64)]) / 1024
    photo = cv2.imread(str(DEMO_PHOTO))
    huge = cv2.resize(photo, (6000, 6000), interpolation=cv2.INTER_LINEAR)[:4000]
    detector = HaarDetector()
    gray = to_gray(photo)
    return {
        "model": str(model.name), "size_kb": model.stat().st_size // 1024,
        "quantization": recognizer.metadata.get("quantization"),
        "private_test_accuracy": recognizer.metadata.get("private_test_accuracy"),
        "faces_per_s_one_at_a_time": round(1 / one),
        "faces_per_s_batch_64": round(1 / batched),
        "photo_512_ms": round(1000 * median_seconds(lambda: recognizer.predict(photo)), 2),
        "photo_512_detection_ms": round(1000 * median_seconds(lambda: detector.detect(gray)), 2),
        "photo_6000x4000_ms": round(1000 * median_seconds(lambda: recognizer.predict(huge),
                                                          repeats=3, warmup=1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", type=Path, default=[
        FP32_REFERENCE, DEFAULT_MODEL, BUNDLED_MODELS["accurate"]])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    rows = [measure(model, args.threads) for model in args.models]
    result = {"machine": f"{platform.processor() or platform.machine()}, "
                         f"{args.threads} threads", "rows": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recognition_speed.json").write_text(json.dumps(result, indent=2))
    lines = ["| model | KB | PrivateTest | faces/s one at a time | faces/s batch 64 | "
             "512x512 photo ms | of which detection ms | 6000x4000 photo ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} ({r['quantization']}) | {r['size_kb']} | "
                     f"{r['private_test_accuracy']} | {r['faces_per_s_one_at_a_time']} | "
                     f"{r['faces_per_s_batch_64']} | {r['photo_512_ms']} | "
                     f"{r['photo_512_detection_ms']} | {r['photo_6000x4000_ms']} |")
    (RESULTS / "recognition_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
