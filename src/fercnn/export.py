"""Export a trained checkpoint (or several, as one averaged ensemble) to ONNX, softmax
included, with its metadata, optionally int8.

The metadata travels inside the file (``metadata_props["fercnn"]``, JSON) so a model file alone
tells a recogniser its classes, input size and normalisation, and how good it is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import FercnnError
from .labels import EMOTIONS, IMAGE_SIZE

METADATA_KEY = "fercnn"


class WithSoftmax(nn.Module):
    """The exported graph: [0, 1] gray images in, probabilities out (averaged over the models
    of an ensemble, as ``fercnn evaluate RUN1 RUN2`` averages them)."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        probabilities = [torch.softmax(model(image), dim=1) for model in self.models]
        return probabilities[0] if len(probabilities) == 1 else \
            torch.stack(probabilities).mean(0)


def export_onnx(checkpoint_paths: str | Path | list, out: str | Path, int8: bool = False,
                data: str | None = None, calibration_images: int = 512) -> dict:
    """Write ``out`` (fp32, or int8 when asked) from one checkpoint or an ensemble of several;
    returns the metadata written into it."""
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .config import config_from_dict

    paths = checkpoint_paths if isinstance(checkpoint_paths, list) else [checkpoint_paths]
    checkpoints = [load_checkpoint(p) for p in paths]
    configs = [config_from_dict(c["config"], str(p)) for c, p in zip(checkpoints, paths,
                                                                      strict=True)]
    checkpoint, config = checkpoints[0], configs[0]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "classes": list(EMOTIONS),
        "input": {"shape": [1, IMAGE_SIZE, IMAGE_SIZE], "layout": "NCHW", "color": "gray",
                  "scale": 1 / 255, "mean": 0.0, "std": 1.0},
        "output": "probabilities",
        "model": checkpoint["model_name"],
        "config_digest": config.digest(),
        "epoch": checkpoint["epoch"],
        "private_test_accuracy": None,
        "quantization": "int8" if int8 else "fp32",
    }
    if len(checkpoints) > 1:
        metadata.update(
            model="ensemble of " + " + ".join(c["model_name"] for c in checkpoints),
            config_digest="+".join(c.digest() for c in configs), epoch=None,
            members=[{"model": c["model_name"], "config_digest": cfg.digest(),
                      "epoch": c["epoch"]} for c, cfg in zip(checkpoints, configs, strict=True)])
    data = data or os.environ.get("FERCNN_DATA") or config.data
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "model.onnx"
        _export_fp32([model_from_checkpoint(c) for c in checkpoints], Path(tmp) / "fp32.onnx")
        if int8:
            if data is None:
                raise FercnnError("--int8 needs training images to calibrate: pass --data")
            from .data import load_dataset

            train = load_dataset(data, val_fraction=config.val_fraction).split("Training")
            _quantize_int8(Path(tmp) / "fp32.onnx", model_path, train.images[:calibration_images])
        else:
            (Path(tmp) / "fp32.onnx").rename(model_path)
        _write_metadata(model_path, metadata)
        if data is not None:  # the accuracy of this very file, not of the torch model
            from .evaluate import evaluate

            accuracy = evaluate([model_path], data)["accuracy"]
            metadata["private_test_accuracy"] = round(accuracy, 4)
            _write_metadata(model_path, metadata)
        staged = out.with_name(out.name + ".tmp")  # same folder as out: the rename is atomic
        shutil.copyfile(model_path, staged)
        os.replace(staged, out)
    return metadata


def _write_metadata(path: Path, metadata: dict) -> None:
    import onnx

    proto = onnx.load(str(path))
    for node in proto.graph.node:  # the exporter records source paths and stack traces here
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(proto, str(path))


def _export_fp32(models: list[nn.Module], path: Path) -> None:
    example = torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    torch.onnx.export(WithSoftmax(models).eval(), (example,), str(path), input_names=["image"],
                      output_names=["probabilities"], dynamo=True, external_data=False,
                      dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)


# everything but the softmax (see _quantize_int8)
QUANTIZED_OPS = ["Conv", "Gemm", "MatMul", "Relu", "MaxPool", "Reshape", "Flatten", "Add",
                 "AveragePool"]


def _quantize_int8(fp32_path: Path, out: Path, images: np.ndarray) -> None:
    """Static QDQ int8, calibrated on training images (activations by min-max).

    Everything up to the logits is quantised, ReLU, pooling, the flattening and the residual
    additions included: leaving those in float put a dequantize/quantize pair around each of
    them, about 25% of the int8 model's time. The softmax stays float, so the probabilities
    still sum to 1.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            batches = np.array_split(images, max(1, len(images) // 64))
            self.batches = iter([{"image": b[:, None].astype(np.float32) / 255}
                                 for b in batches])

        def get_next(self):
            return next(self.batches, None)

    prepared = fp32_path.with_name("prepared.onnx")
    quant_pre_process(str(fp32_path), str(prepared))
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True, op_types_to_quantize=QUANTIZED_OPS)
