"""face-api.js's expression network weights into a fercnn ``init:`` checkpoint.

The weights are `model/face_expression_model*` in the npm package @vladmandic/face-api 1.7.15
(MIT; the maintained fork of face-api.js): fetch it once with network access, then convert
offline:

    npm pack @vladmandic/face-api@1.7.15          # writes vladmandic-face-api-1.7.15.tgz
    python scripts/convert_faceapi.py vladmandic-face-api-1.7.15.tgz runs/faceapi-init/best.pt
    python scripts/convert_faceapi.py vladmandic-face-api-1.7.15.tgz \
        src/fercnn/assets/faceapi_expression.onnx

An OUT ending in ``.onnx`` is the network as published, reading its own 112x112 colour input:
the photo reader that the bundled default and accurate models blend with on faces larger than
FER-2013's (fercnn.recognition.photo_reader); any other OUT is a checkpoint.

The manifest stores most tensors as uint8 with a scale and a minimum; they are dequantised
as tfjs does (q * scale + min). face-api.js's classes are reordered to fercnn's. The script
prints the network's accuracy on FER-2013 PublicTest with ``--data`` (the original reads about
58% of these 48x48 faces); scripts/check_faceapi_port.py compares the port with face-api.js's
own code under node.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import torch

from fercnn.labels import EMOTIONS
from fercnn.models import create_model
from fercnn.training.checkpoint import save_atomic
from fercnn.training.export import write_metadata

MODEL = "faceapi-dense"
PREFIX = "package/model/face_expression_model"
FACEAPI_CLASSES = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
# fercnn's order: angry, disgust, fear, happy, sad, surprise, neutral
TO_FERCNN = [FACEAPI_CLASSES.index(name) for name in
             ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")]


def read_package(tgz: Path) -> tuple[list[dict], bytes]:
    """The weights manifest and the concatenated weight file of the expression model."""
    with tarfile.open(tgz) as tar:
        manifest = json.load(tar.extractfile(f"{PREFIX}-weights_manifest.json"))
        data = b"".join(tar.extractfile(f"package/model/{name}").read()
                        for group in manifest for name in group["paths"])
    return manifest, data


def dequantise(manifest: list[dict], data: bytes) -> dict[str, np.ndarray]:
    """Every named tensor as float32, in the manifest's order and shapes (TensorFlow's HWIO)."""
    tensors, offset = {}, 0
    for entry in (w for group in manifest for w in group["weights"]):
        count = int(np.prod(entry["shape"]))
        quant = entry.get("quantization")
        if quant:
            raw = np.frombuffer(data, np.uint8, count, offset).astype(np.float32)
            values, offset = raw * quant["scale"] + quant["min"], offset + count
        else:
            values = np.frombuffer(data, np.float32, count, offset)
            offset += 4 * count
        tensors[entry["name"]] = values.reshape(entry["shape"]).astype(np.float32)
    if offset != len(data):
        raise SystemExit(f"{len(data) - offset} bytes of weights left over: not this model")
    return tensors


def state_dict(tensors: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """TensorFlow's names and layouts as ``FaceApiExpressionNet``'s parameters."""
    def t(name: str, *perm: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(tensors[name].transpose(perm)))

    out = {}
    for b in range(4):
        tf = f"dense{b}"
        if b == 0:  # a full convolution; the other blocks start with a separable one
            out["blocks.0.conv0.1.weight"] = t(f"{tf}/conv0/filters", 3, 2, 0, 1)
            out["blocks.0.conv0.1.bias"] = t(f"{tf}/conv0/bias", 0)
        else:
            out[f"blocks.{b}.conv0.1.weight"] = t(f"{tf}/conv0/depthwise_filter", 2, 3, 0, 1)
            out[f"blocks.{b}.conv0.2.weight"] = t(f"{tf}/conv0/pointwise_filter", 3, 2, 0, 1)
            out[f"blocks.{b}.conv0.2.bias"] = t(f"{tf}/conv0/bias", 0)
        for k in range(3):
            ours, theirs = f"blocks.{b}.convs.{k}", f"{tf}/conv{k + 1}"
            out[f"{ours}.1.weight"] = t(f"{theirs}/depthwise_filter", 2, 3, 0, 1)
            out[f"{ours}.2.weight"] = t(f"{theirs}/pointwise_filter", 3, 2, 0, 1)
            out[f"{ours}.2.bias"] = t(f"{theirs}/bias", 0)
    out["fc.weight"] = t("fc/weights", 1, 0)[TO_FERCNN]
    out["fc.bias"] = t("fc/bias", 0)[TO_FERCNN]
    return out


def public_accuracy(model: torch.nn.Module, data: str) -> float:
    from fercnn import load_dataset

    public = load_dataset(data).split("PublicTest")
    with torch.no_grad():
        logits = torch.cat([model(torch.from_numpy(public.images[i:i + 256]).unsqueeze(1)
                                  .float() / 255) for i in range(0, len(public.images), 256)])
    return float((logits.argmax(1).numpy() == public.labels).mean())


class ColourReader(torch.nn.Module):
    """(B, 3, 112, 112) RGB in [0, 1] -> probabilities in fercnn's class order."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net.read_colour(rgb), dim=1)


def export_reader(model: torch.nn.Module, out: Path, source: str) -> None:
    """The published network as an onnxruntime file, its origin in the metadata."""
    example = torch.rand(2, 3, 112, 112)
    torch.onnx.export(ColourReader(model).eval(), (example,), str(out), input_names=["face"],
                      output_names=["probabilities"], dynamo=True, external_data=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    write_metadata(out, {"model": "face-api.js face_expression_model (as published)",
                         "classes": list(EMOTIONS),
                         "input": {"size": 112, "channels": "rgb", "scale": 1 / 255},
                         "source": source, "licence": "MIT"})
    with torch.no_grad():  # the file must give what the network gives
        import onnxruntime as ort

        check = torch.rand(4, 3, 112, 112)
        want = ColourReader(model).eval()(check).numpy()
        got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
            None, {"face": check.numpy()})[0]
    difference = float(np.abs(got - want).max())
    if difference > 1e-4:
        raise SystemExit(f"{out}: onnxruntime differs from the network by {difference:.2e}")
    print(f"onnxruntime against torch: max probability difference {difference:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package", type=Path, help="the npm pack tarball of @vladmandic/face-api")
    parser.add_argument("out", type=Path, help="the checkpoint to write (an init: for "
                        "training), or with .onnx the photo reader's file")
    parser.add_argument("--data", help="FER-2013 CSV: print PublicTest accuracy as a check")
    args = parser.parse_args()
    model = create_model(MODEL)
    try:
        manifest, data = read_package(args.package)
        model.load_state_dict(state_dict(dequantise(manifest, data)))
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as e:
        raise SystemExit(f"{args.package}: not the @vladmandic/face-api 1.7.15 package "
                         f"({type(e).__name__}: {e})") from None
    model.eval()
    if args.data:
        accuracy = public_accuracy(model, args.data)
        print(f"PublicTest accuracy of the converted network: {accuracy:.2%}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    source = (f"{args.package.name} (face_expression_model.bin sha256 "
              f"{hashlib.sha256(data).hexdigest()})")
    if args.out.suffix == ".onnx":
        export_reader(model, args.out, source)
    else:
        save_atomic({"model_name": MODEL, "model": model.state_dict(), "epoch": 0,
                     "config": {"model": MODEL}, "source": source}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
