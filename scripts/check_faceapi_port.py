"""Check fercnn's torch port of face-api.js's expression network against face-api.js itself.

Each photo is resized to 112x112 RGB (the network's own input) and read by both: the converted
checkpoint's layers in torch, and face-api.js's own code under tfjs (scripts/faceapi_reference.js,
needs node and the two npm packages it names). Prints the largest probability difference and
how many classes agree; exits non-zero when they differ by more than 1e-4.

    npm install --prefix /tmp/faceapi-js @vladmandic/face-api@1.7.15 @tensorflow/tfjs@4.22.0
    python scripts/check_faceapi_port.py runs/faceapi-init/best.pt /tmp/faceapi-js \
        ../shared/data/wild-dev/images/*.jpg --limit 16
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from convert_faceapi import TO_FERCNN

from fercnn.training.checkpoint import load_checkpoint, model_from_checkpoint

SCRIPT = Path(__file__).with_name("faceapi_reference.js")


def faces_112(paths: list[Path]) -> np.ndarray:
    """(N, 112, 112, 3) float32 RGB in 0..255, each photo resized whole."""
    faces = []
    for path in paths:
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"{path}: not a readable image")
        faces.append(cv2.resize(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), (112, 112),
                                interpolation=cv2.INTER_AREA))
    return np.stack(faces).astype(np.float32)


@torch.no_grad()
def port_probabilities(checkpoint: Path, faces: np.ndarray) -> np.ndarray:
    """The port's softmax on the 112x112 colour faces (the layers after the model's resize)."""
    model = model_from_checkpoint(load_checkpoint(checkpoint))
    rgb = torch.from_numpy(faces).permute(0, 3, 1, 2) / 255
    return torch.softmax(model.read_colour(rgb), 1).numpy()


def reference_probabilities(node_dir: Path, faces: np.ndarray) -> np.ndarray:
    """face-api.js's softmax, reordered to fercnn's classes."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs, out = Path(tmp) / "faces.bin", Path(tmp) / "probs.json"
        inputs.write_bytes(faces.astype("<f4").tobytes())
        try:
            subprocess.run(["node", str(SCRIPT), str(node_dir), str(inputs), str(len(faces)),
                            str(out)], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            raise SystemExit(f"the reference did not run under node ({e}); are the npm "
                             f"packages installed in {node_dir}?") from None
        return np.array(json.loads(out.read_text()), np.float32)[:, TO_FERCNN]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="written by scripts/convert_faceapi.py")
    parser.add_argument("node_dir", type=Path, help="where the npm packages are installed")
    parser.add_argument("photos", type=Path, nargs="+")
    parser.add_argument("--limit", type=int, default=16)
    args = parser.parse_args()
    faces = faces_112(args.photos[:args.limit])
    ours = port_probabilities(args.checkpoint, faces)
    theirs = reference_probabilities(args.node_dir, faces)
    gap = float(np.abs(ours - theirs).max())
    agree = int((ours.argmax(1) == theirs.argmax(1)).sum())
    print(f"{len(faces)} photos: largest probability difference {gap:.1e}, "
          f"same class {agree} of {len(faces)}")
    if gap > 1e-4:
        raise SystemExit("the port does not compute what face-api.js computes")


if __name__ == "__main__":
    main()
