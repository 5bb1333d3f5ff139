"""Which test-time views help: PublicTest accuracy of several view sets, per model.

    python benchmarks/tta_views.py MODEL [MODEL ...] [--data CSV] [--runs DIR]

A model is what ``fercnn evaluate`` takes: an exported ONNX model (``default``, ``accurate``,
a ``.onnx`` file) or a run folder (under ``--runs`` if given). Every view is one geometric
transform of the 48x48 faces (OpenCV, edge pixels replicated as in training), scored once per
model; a set averages the probabilities of its views. ``shifts`` is ``fercnn evaluate --tta``
(``fercnn.tta``); the others add or swap in the zooms and rotations that every training recipe
here draws from (``scale: 0.1``, ``rotate: 10``). Only PublicTest is read, so a set chosen here
can still be reported once on PrivateTest. Results go to benchmarks/results/tta_views.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import cv2
import numpy as np

from fercnn.data import load_dataset
from fercnn.errors import FercnnError
from fercnn.evaluate import model_probabilities, read_checkpoints
from fercnn.tta import SHIFT

RESULTS = Path(__file__).resolve().parent / "results"
SHIFTS = [(dx, dy) for dx in (-SHIFT, SHIFT) for dy in (-SHIFT, SHIFT)]
ZOOMS = (0.9, 0.95, 1.05, 1.1)
ANGLES = (-5, 5)


def view(images: np.ndarray, dx: float = 0, dy: float = 0, zoom: float = 1,
         angle: float = 0) -> np.ndarray:
    """Each face shifted, zoomed about its centre and rotated (degrees, counter-clockwise)."""
    size = images.shape[1]
    matrix = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, zoom)
    matrix[:, 2] += (dx, dy)
    return np.stack([cv2.warpAffine(face, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE) for face in images])


def view_sets() -> dict[str, list[dict]]:
    """Named sets of views, each view also mirrored left-right ("mirror": the face and its
    mirror image alone)."""
    identity = [{}]
    shifts = [{"dx": dx, "dy": dy} for dx, dy in SHIFTS]
    zooms = [{"zoom": z} for z in ZOOMS]
    mild_zooms = [{"zoom": z} for z in ZOOMS if abs(z - 1) < 0.07]
    rotations = [{"angle": a} for a in ANGLES]
    return {"mirror": identity, "shifts": identity + shifts, "zooms": identity + zooms,
            "shifts + mild zooms": identity + shifts + mild_zooms,
            "shifts + rotations": identity + shifts + rotations,
            "shifts + mild zooms + rotations": identity + shifts + mild_zooms + rotations,
            "all": identity + shifts + zooms + rotations}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="MODEL")
    parser.add_argument("--data", help="FER-2013 CSV (default $FERCNN_DATA)")
    parser.add_argument("--runs", help="folder holding the run folders")
    args = parser.parse_args()
    checkpoints = read_checkpoints(args.models, args.runs)
    public = load_dataset(args.data).split("PublicTest")
    sets = view_sets()
    distinct = {json.dumps(v, sort_keys=True) for views in sets.values() for v in views}
    rows = []
    for model in args.models:
        probabilities = {}  # (view, mirrored) -> (N, 7)
        for key in sorted(distinct):
            faces = view(public.images, **json.loads(key))
            for mirrored, batch in ((False, faces), (True, faces[:, :, ::-1])):
                probabilities[key, mirrored] = model_probabilities(
                    model, np.ascontiguousarray(batch), False, checkpoints.get(model))[0]
        row = {"model": model}
        for name, views in sets.items():
            keys = [(json.dumps(v, sort_keys=True), m) for v in views for m in (False, True)]
            p = np.mean([probabilities[k] for k in keys], axis=0)
            row[name] = round(float(np.mean(p.argmax(1) == public.labels)), 4)
        row["no TTA"] = round(float(np.mean(
            probabilities["{}", False].argmax(1) == public.labels)), 4)
        rows.append(row)
        print(row, flush=True)
    names = ["no TTA", *sets]
    views = {name: 2 * len(v) for name, v in sets.items()} | {"no TTA": 1}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tta_views.json").write_text(json.dumps(
        {"machine": f"{platform.machine()}", "split": "PublicTest", "views": views,
         "rows": rows}, indent=2))
    lines = ["| model | " + " | ".join(f"{n} ({views[n]})" for n in names) + " |",
             "| --- |" + " ---: |" * len(names)]
    lines += [f"| {r['model']} | " + " | ".join(f"{r[n]:.2%}" for n in names) + " |"
              for r in rows]
    (RESULTS / "tta_views.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        main()
    except FercnnError as e:
        raise SystemExit(f"tta_views: error: {e}") from None
