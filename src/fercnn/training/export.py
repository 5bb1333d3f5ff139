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

from ..errors import FercnnError
from ..labels import EMOTIONS, IMAGE_SIZE

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
                data: str | None = None, calibration_images: int = 512,
                score: bool = True) -> dict:
    """Write ``out`` (fp32, or int8 when asked) from one checkpoint or an ensemble of several;
    returns the metadata written into it. ``score=False`` leaves PrivateTest unread: a
    candidate still being chosen on PublicTest and photos is exported without its test
    figure, which is looked at once, for the one chosen."""
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .config import config_from_dict

    paths = checkpoint_paths if isinstance(checkpoint_paths, list) else [checkpoint_paths]
    checkpoints = [load_checkpoint(p) for p in paths]
    configs = [config_from_dict(c["config"], str(p)) for c, p in zip(checkpoints, paths,
                                                                      strict=True)]
    checkpoint, config = checkpoints[0], configs[0]
    out = Path(out)
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
        fp32 = Path(tmp) / "fp32.onnx"
        _export_fp32([model_from_checkpoint(c) for c in checkpoints], fp32)
        _finish(fp32, out, metadata, int8, data, config.val_fraction, calibration_images, score)
    return metadata


def requantize_onnx(model: str | Path, out: str | Path, data: str | None = None,
                    calibration_images: int = 512) -> dict:
    """Quantise an exported model again with this version's int8 settings: an fp32 export, or
    an int8 one written by an earlier fercnn (its weights are dequantised first, so its 8-bit
    values are rounded to the 7-bit grid). Earlier int8 files lose accuracy on CPUs without
    VNNI (see :func:`_quantize_int8`); this repairs them without the training run."""
    import onnx

    from ..recognition import BUNDLED_MODELS, Recognizer

    source = Path(BUNDLED_MODELS.get(str(model), model))
    metadata = dict(Recognizer(source).metadata)  # also: a clear error for a bad file
    metadata.update(quantization="int8", private_test_accuracy=None)
    data = data or os.environ.get("FERCNN_DATA")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(_dequantized(onnx.load(str(source))), str(fp32))
        # an exported model keeps no config: calibrate on Training as the default config would
        _finish(fp32, Path(out), metadata, True, data, 0.1, calibration_images)
    return metadata


def _finish(fp32: Path, out: Path, metadata: dict, int8: bool, data: str | None,
            val_fraction: float, calibration_images: int, score: bool = True) -> None:
    """From an fp32 graph to ``out``: int8 when asked, the metadata inside, and the
    PrivateTest accuracy of this very file (not of the torch model) when data is at hand."""
    from ..data import load_dataset

    model_path = fp32.with_name("model.onnx")
    dataset = load_dataset(data, val_fraction=val_fraction) if data is not None else None
    if int8:
        if dataset is None:
            raise FercnnError("--int8 needs training images to calibrate: pass --data")
        _quantize_int8(fp32, model_path, dataset.split("Training").images[:calibration_images])
    else:
        fp32.rename(model_path)
    _write_metadata(model_path, metadata)
    # data packed without PrivateTest (scripts/device_data.py): scored where that split is
    if score and dataset is not None and dataset.split_mask("PrivateTest").any():
        from ..evaluate import evaluate

        metadata["private_test_accuracy"] = round(evaluate([model_path], data)["accuracy"], 4)
        _write_metadata(model_path, metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(out.name + ".tmp")  # same folder as out: the rename is atomic
    shutil.copyfile(model_path, staged)
    os.replace(staged, out)


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

    Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2 only), onnxruntime
    multiplies uint8 activations by int8 weights with VPMADDUBSW, whose 16-bit pair sums
    saturate beyond 255 x 64 x 2. With 8-bit weights the embedded model lost 2.2 points of
    PrivateTest there (69.55% against 71.75% on VNNI CPUs); with 7 bits the integer products
    never saturate, so every CPU computes the same result (at the 8-bit speed on such a CPU:
    benchmarks/results/recognition_speed-avx2.md).
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
                    per_channel=True, reduce_range=True, op_types_to_quantize=QUANTIZED_OPS)


# ops whose output can be negative, so that a clamp at zero after them is a ReLU
LINEAR_OPS = ("Conv", "Gemm", "MatMul", "Add")


def _dequantized(proto):
    """The float graph behind a QDQ int8 one: each quantised initializer replaced by its float
    values, each activation's QuantizeLinear -> DequantizeLinear pair removed. onnxruntime's
    quantiser drops a ReLU before a quantisation whose zero point is the lowest integer (the
    clamp does its work), so such a pair after a linear op becomes a ReLU again (after pooling
    or reshaping a ReLU's output, the clamp changes nothing). An fp32 graph comes back
    unchanged."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {output: node for node in graph.node for output in node.output}
    quantized = {id(producers[node.input[0]]) for node in graph.node
                 if node.op_type == "DequantizeLinear" and node.input[0] in producers
                 and producers[node.input[0]].op_type == "QuantizeLinear"}
    renamed, nodes, added = {}, [], []
    for node in graph.node:
        if id(node) in quantized:
            continue
        if node.op_type != "DequantizeLinear":
            nodes.append(node)
        elif node.input[0] in initializers:  # a weight or bias: its float values instead
            added.append(numpy_helper.from_array(_dequantize(node, initializers),
                                                 node.output[0]))
        else:  # an activation's pair
            quantize = producers[node.input[0]]
            zero = numpy_helper.to_array(initializers[quantize.input[2]])
            source = producers.get(quantize.input[0])
            if zero.min() == np.iinfo(zero.dtype).min and source is not None \
                    and source.op_type in LINEAR_OPS:
                nodes.append(helper.make_node("Relu", [quantize.input[0]], [node.output[0]]))
            else:
                renamed[node.output[0]] = quantize.input[0]
    for node in nodes:
        for i, name in enumerate(node.input):
            node.input[i] = renamed.get(name, name)
    for output in graph.output:
        output.name = renamed.get(output.name, output.name)
    used = {name for node in nodes for name in node.input}
    del graph.node[:]
    graph.node.extend(nodes)
    remaining = [i for i in graph.initializer if i.name in used] + added
    del graph.initializer[:]
    graph.initializer.extend(remaining)
    del graph.value_info[:]  # shapes of removed tensors; quantisation infers them again
    return proto


def _dequantize(node, initializers: dict) -> np.ndarray:
    """The float values of a DequantizeLinear of initializers: (q - zero point) x scale, the
    scale per channel along the node's axis where it is a vector."""
    from onnx import numpy_helper

    def values(i: int) -> np.ndarray | None:
        named = len(node.input) > i and node.input[i]
        return numpy_helper.to_array(initializers[node.input[i]]).astype(np.float32) \
            if named else None

    q, scale, zero = values(0), values(1), values(2)
    zero = np.zeros_like(scale) if zero is None else zero
    if scale.ndim == 1 and q.ndim > 1:
        shape = [1] * q.ndim
        shape[next((a.i for a in node.attribute if a.name == "axis"), 1)] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return (q - zero) * scale
