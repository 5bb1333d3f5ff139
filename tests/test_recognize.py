"""Export to ONNX and recognition: parity with torch, the Recognizer, predict, no torch needed."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from fercnn.checkpoint import load_checkpoint
from fercnn.export import model_from_checkpoint
from fercnn.recognize import Recognizer

from .conftest import REPO, csv_text, make_rows, run_cli


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A shallow model trained briefly on synthetic data, exported to fp32 and int8 ONNX."""
    folder = tmp_path_factory.mktemp("export")
    data = folder / "fer.csv"
    data.write_text(csv_text(make_rows({"Training": 210, "PublicTest": 35, "PrivateTest": 35})))
    config = folder / "tiny.yaml"
    config.write_text("model: shallow\nepochs: 1\nbatch_size: 32\n")
    run = folder / "run"
    assert run_cli("train", "--config", config, "--data", data, "--out", run).returncode == 0
    for name, extra in (("model.onnx", ()), ("model-int8.onnx", ("--int8",))):
        result = run_cli("export", run, "--out", folder / name, "--data", data, *extra)
        assert result.returncode == 0, result.stderr
    return {"run": run, "data": data, "fp32": folder / "model.onnx",
            "int8": folder / "model-int8.onnx", "folder": folder}


def test_onnx_matches_torch_within_1e_4(exported):
    model = model_from_checkpoint(load_checkpoint(exported["run"]))
    faces = np.random.default_rng(1).integers(0, 256, (16, 48, 48)).astype(np.uint8)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(faces[:, None]).float() / 255), 1)
    got = Recognizer(exported["fp32"]).predict_batch(faces)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)


def test_metadata_travels_inside_the_file(exported):
    for key, quantization in (("fp32", "fp32"), ("int8", "int8")):
        meta = Recognizer(exported[key]).metadata
        assert meta["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                   "neutral"]
        assert meta["input"]["shape"] == [1, 48, 48] and meta["model"] == "shallow"
        assert meta["quantization"] == quantization
        assert 0 <= meta["private_test_accuracy"] <= 1 and len(meta["config_digest"]) == 12


def test_int8_model_gives_probabilities(exported):
    faces = np.random.default_rng(2).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    probabilities = Recognizer(exported["int8"]).predict_batch(faces)
    assert probabilities.shape == (5, 7)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-3)


def test_recognizer_accepts_paths_arrays_and_pil(exported, tmp_path):
    from PIL import Image

    face = np.random.default_rng(3).integers(0, 256, (48, 48)).astype(np.uint8)
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), face)
    recognizer = Recognizer(exported["fp32"])
    results = [recognizer.predict(x, detect=False)
               for x in (path, face, cv2.cvtColor(face, cv2.COLOR_GRAY2BGR),
                         Image.fromarray(face))]
    for faces in results:
        assert len(faces) == 1 and faces[0].box == (0, 0, 48, 48)
        assert abs(sum(faces[0].probabilities.values()) - 1) < 1e-5
        assert faces[0].emotion == max(faces[0].probabilities, key=faces[0].probabilities.get)
    first = results[0][0].probabilities
    for faces in results[1:]:
        assert faces[0].probabilities == pytest.approx(first, abs=1e-6)


def test_given_boxes_and_no_face(exported):
    recognizer = Recognizer(exported["fp32"])
    image = np.full((200, 300), 128, np.uint8)  # flat gray: nothing to detect
    assert recognizer.predict(image) == []
    faces = recognizer.predict(image, boxes=[(10, 20, 60, 60), (150, 50, 80, 80)])
    assert [f.box for f in faces] == [(10, 20, 60, 60), (150, 50, 80, 80)]


def test_predict_command_reports_each_problem_and_goes_on(exported, tmp_path):
    good = tmp_path / "face.png"
    cv2.imwrite(str(good), np.random.default_rng(4).integers(0, 256, (48, 48)).astype(np.uint8))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("predict", good, broken, tmp_path / "missing.png", empty, "--json",
                     "--no-detect", "--model", exported["fp32"])
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [r["image"] for r in report] == [str(good)]
    assert len(report[0]["faces"]) == 1
    assert sorted(report[0]["faces"][0]["probabilities"]) == sorted(
        ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr
    assert any("broken.jpg" in e for e in errors) and any("missing.png" in e for e in errors)
    assert any("no images" in e for e in errors)


def test_recognition_works_without_torch(exported, tmp_path):
    """Block torch in a fresh interpreter: import fercnn and predict must still work."""
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.random.default_rng(5).integers(0, 256, (48, 48)).astype(np.uint8))
    code = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked for this test")
sys.meta_path.insert(0, NoTorch())
import fercnn
from fercnn.cli import main
code = main(["predict", {str(face)!r}, "--no-detect", "--json", "--model",
             {str(exported["fp32"])!r}])
assert "torch" not in sys.modules
sys.exit(code)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)[0]["faces"]
    assert len(faces) == 1 and abs(sum(faces[0]["probabilities"].values()) - 1) < 1e-5
