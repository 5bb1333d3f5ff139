"""Export a trained checkpoint (or several, as one averaged ensemble) to ONNX, softmax
included, with its metadata, optionally int8.

The metadata travels inside the file (``metadata_props["fercnn"]``, JSON) so a model file alone
tells a recogniser its classes, input size and normalisation, how good it is, and (fitted on
PublicTest when the data has it, calibrate.py) how to calibrate its probabilities for
``--prior photos``.
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
from .calibrate import SPLIT as CALIBRATION_SPLIT
from .calibrate import calibration_entry

METADATA_KEY = "fercnn"


class WithSoftmax(nn.Module):
    """The exported graph: [0, 1] gray images in, probabilities out (averaged over the models
    of an ensemble, as ``fercnn evaluate RUN1 RUN2`` averages them, or weighted: a cheap
    member can add what it reads well without outvoting the strong one)."""

    def __init__(self, models: list[nn.Module], weights: list[float] | None = None) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)
        self.weights = None if weights is None else _shares(weights, len(models))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        probabilities = [torch.softmax(model(image), dim=1) for model in self.models]
        if len(probabilities) == 1:
            return probabilities[0]
        if self.weights is None:
            return torch.stack(probabilities).mean(0)
        return sum(w * p for w, p in zip(self.weights, probabilities, strict=True))


def export_onnx(checkpoint_paths: str | Path | list, out: str | Path, int8: bool = False,
                data: str | None = None, calibration_images: int = 512,
                score: bool = False, weights: list[float] | None = None) -> dict:
    """Write ``out`` (fp32, or int8 when asked) from one checkpoint or an ensemble of several,
    its members' probabilities averaged or, with ``weights`` (one per member, normalised),
    weighted; returns the metadata written into it. PrivateTest is read only with ``score``:
    candidates are exported and chosen on PublicTest and photos without their test figure,
    which is read once, for the one chosen."""
    from .checkpoint import load_checkpoint, model_from_checkpoint
    from .config import config_from_dict

    paths = checkpoint_paths if isinstance(checkpoint_paths, list) else [checkpoint_paths]
    _check_weights(weights, len(paths))
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
        members = [{"model": c["model_name"], "config_digest": cfg.digest(),
                    "epoch": c["epoch"], "weight": round(w, 4),
                    **({"source": c["source"]} if "source" in c else {})}
                   for c, cfg, w in zip(checkpoints, configs, _shares(weights, len(paths)),
                                        strict=True)]
        metadata.update(model=_ensemble_name(members, weights is not None),
                        config_digest="+".join(c.digest() for c in configs), epoch=None,
                        members=members)
    data = data or os.environ.get("FERCNN_DATA") or config.data
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _export_fp32([model_from_checkpoint(c) for c in checkpoints], fp32, weights)
        _finish(fp32, out, metadata, int8, data, config.val_fraction, calibration_images, score)
    return metadata


def requantize_onnx(model: str | Path, out: str | Path, data: str | None = None,
                    calibration_images: int = 512, score: bool = False) -> dict:
    """Quantise an exported model again with this version's int8 settings: an fp32 export, or
    an int8 one written by an earlier fercnn (its weights are dequantised first, so its 8-bit
    values are rounded to the 7-bit grid). Earlier int8 files lose accuracy on CPUs without
    VNNI (see :func:`_quantize_int8`); this repairs them without the training run."""
    import onnx

    from ..recognition import Recognizer
    from ..recognition.bundled import model_path

    source = model_path(model)
    metadata = dict(Recognizer(source).metadata)  # a file that is no model: a clear error
    metadata.update(quantization="int8", private_test_accuracy=None)
    data = data or os.environ.get("FERCNN_DATA")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(_dequantized(onnx.load(str(source))), str(fp32))
        # an exported model keeps no config: calibrate on Training as the default config would
        _finish(fp32, Path(out), metadata, True, data, 0.1, calibration_images, score)
    return metadata


def calibrate_onnx(model: str | Path, out: str | Path, data: str | None = None) -> dict:
    """Write ``out``: ``model`` (a file or bundled name) unchanged but for its metadata, which
    gains the calibration fitted on the data's PublicTest (calibrate.py), for files exported
    before fercnn fitted it, or exported without data. ``out`` may be ``model`` itself."""
    from ..data import load_dataset
    from ..recognition import Recognizer
    from ..recognition.bundled import model_path

    source = model_path(model)
    metadata = dict(Recognizer(source).metadata)  # a file that is no model: a clear error
    data = data or os.environ.get("FERCNN_DATA")
    if not data:
        raise FercnnError("calibrate needs FER-2013 to fit on (its PublicTest): pass --data")
    metadata["calibration"] = calibration_entry(source, load_dataset(data))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(out.name + ".tmp")  # same folder as out: the rename is atomic
    shutil.copyfile(source, staged)
    write_metadata(staged, metadata)
    os.replace(staged, out)
    return metadata


def ensemble_onnx(models: list[str | Path], out: str | Path, int8: bool = False,
                  data: str | None = None, score: bool = False,
                  weights: list[float] | None = None) -> dict:
    """Write ``out``: exported models (files or bundled names) joined into one graph that
    averages (or, with ``weights``, weighs) their probabilities, as :func:`export_onnx` joins
    checkpoints. What an ensemble is built from is then committed files, not run folders that
    are lost with the machine. int8 members are dequantised first and, with ``int8``, the
    whole graph is quantised again, calibrated as a fresh export is."""
    import onnx

    from ..recognition import Recognizer
    from ..recognition.bundled import model_path

    if len(models) < 2:
        raise FercnnError("an ensemble needs at least two models")
    _check_weights(weights, len(models))
    sources = [model_path(m) for m in models]  # a missing file: a clear error
    metadatas = [dict(Recognizer(s).metadata) for s in sources]
    weighted = _shares(weights, len(models))
    members = [member for m, w, source in zip(metadatas, weighted, models, strict=True)
               for member in _members_of(m, w, str(source))]
    unequal = len({m["weight"] for m in members}) > 1  # weighted, or an ensemble inside
    metadata = {**metadatas[0], "model": _ensemble_name(members, unequal),
                "config_digest": "+".join(str(m["config_digest"]) for m in members),
                "epoch": None, "members": members, "private_test_accuracy": None,
                "quantization": "int8" if int8 else "fp32"}
    graph = _joined([_dequantized(onnx.load(str(s))) for s in sources], weighted)
    data = data or os.environ.get("FERCNN_DATA")
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx.save(graph, str(fp32))
        _finish(fp32, Path(out), metadata, int8, data, 0.1, 512, score)
    return metadata


def _shares(weights: list[float] | None, members: int) -> list[float]:
    """Each member's share of an ensemble's probabilities: its weight normalised, or equal."""
    return [w / sum(weights) for w in weights] if weights else [1 / members] * members


def _ensemble_name(members: list[dict], weighted: bool) -> str:
    """``ensemble of vgg-s (0.70) + vgg-tiny (0.30)``: the members, with their shares when
    weighted."""
    return "ensemble of " + " + ".join(
        m["model"] + (f" ({m['weight']:.2f})" if weighted else "") for m in members)


def _members_of(metadata: dict, share: float, source: str) -> list[dict]:
    """An exported model as ensemble members: itself, or the members of an ensemble, their
    weights scaled by its share (so an ensemble's networks are counted where one is used)."""
    inner = metadata.get("members")
    if not inner:
        return [{"model": metadata.get("model"), "config_digest": metadata.get("config_digest"),
                 "weight": round(share, 4), "source": source}]
    return [{**m, "weight": round(share * m.get("weight", 1 / len(inner)), 4),
             "source": f"{source} ({m['source']})" if "source" in m else source}
            for m in inner]


def _joined(protos: list, weights: list[float]):
    """One graph running every member on the shared input, probabilities weighted and
    summed."""
    from onnx import helper, numpy_helper

    first = protos[0]
    image, output = first.graph.input[0], first.graph.output[0]
    nodes, initializers, weighted = [], [], []
    for i, proto in enumerate(protos):
        member_output = _prefix_names(proto.graph, f"m{i}/", image.name)
        share = numpy_helper.from_array(np.array(weights[i], np.float32), f"m{i}/share")
        nodes += [*proto.graph.node,
                  helper.make_node("Mul", [member_output, share.name], [f"m{i}/weighted"])]
        initializers += [*proto.graph.initializer, share]
        weighted.append(f"m{i}/weighted")
    nodes.append(helper.make_node("Sum", weighted, [output.name]))
    graph = helper.make_graph(nodes, "ensemble", [image], [output], initializers)
    return helper.make_model(graph, opset_imports=first.opset_import,
                             ir_version=first.ir_version)


def _prefix_names(graph, prefix: str, image: str) -> str:
    """Prefix every node, tensor and initializer name of a member's graph so that members
    cannot collide, its input renamed to the ensemble's ``image``; returns its output's new
    name."""
    source = graph.input[0].name

    def rename(name: str) -> str:
        return image if name == source else (prefix + name if name else name)

    for node in graph.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        node.name = rename(node.name)
    for initializer in graph.initializer:
        initializer.name = rename(initializer.name)
    return rename(graph.output[0].name)


def _finish(fp32: Path, out: Path, metadata: dict, int8: bool, data: str | None,
            val_fraction: float, calibration_images: int, score: bool = False) -> None:
    """From an fp32 graph to ``out``: int8 when asked, the metadata inside, and the
    PrivateTest accuracy of this very file (not of the torch model) when asked to ``score``."""
    from ..data import load_dataset

    model_path = fp32.with_name("model.onnx")
    dataset = load_dataset(data, val_fraction=val_fraction) if data is not None else None
    if int8:
        if dataset is None:
            raise FercnnError("--int8 needs training images to calibrate: pass --data")
        _quantize_int8(fp32, model_path, dataset.split("Training").images[:calibration_images])
    else:
        fp32.rename(model_path)
    # a member's or an earlier file's calibration is not this graph's: fitted again or dropped
    metadata.pop("calibration", None)
    write_metadata(model_path, metadata)  # first, so the fit reads the file as it will be read
    if dataset is not None and dataset.split_mask(CALIBRATION_SPLIT).any():
        metadata["calibration"] = calibration_entry(model_path, dataset)
        write_metadata(model_path, metadata)
    # data packed without PrivateTest (scripts/device_data.py): scored where that split is
    if score and dataset is not None and dataset.split_mask("PrivateTest").any():
        from ..evaluate import evaluate

        scored = evaluate([model_path], data, split="PrivateTest")
        metadata["private_test_accuracy"] = round(scored["accuracy"], 4)
        write_metadata(model_path, metadata)
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = out.with_name(out.name + ".tmp")  # same folder as out: the rename is atomic
    shutil.copyfile(model_path, staged)
    os.replace(staged, out)


def write_metadata(path: Path, metadata: dict) -> None:
    """``metadata`` as the file's only ``fercnn`` entry, and no source paths of this machine."""
    import onnx

    proto = onnx.load(str(path))
    for node in proto.graph.node:  # the exporter records source paths and stack traces here
        del node.metadata_props[:]
        node.doc_string = ""
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    onnx.save(proto, str(path))


def _check_weights(weights: list[float] | None, members: int) -> None:
    if weights is None:
        return
    if members < 2 or len(weights) != members:
        raise FercnnError(f"--weights: {len(weights)} weight(s) for {members} model(s); give "
                          "one per member of an ensemble")
    if min(weights) <= 0:
        raise FercnnError("--weights: every weight must be positive")


def _export_fp32(models: list[nn.Module], path: Path,
                 weights: list[float] | None = None) -> None:
    example = torch.rand(2, 1, IMAGE_SIZE, IMAGE_SIZE)
    torch.onnx.export(WithSoftmax(models, weights).eval(), (example,), str(path),
                      input_names=["image"], output_names=["probabilities"], dynamo=True,
                      external_data=False,
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
