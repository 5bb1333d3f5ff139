"""Calibrating a model's probabilities before the prior shift: bias-corrected temperature
scaling fitted on PublicTest, kept in the model file, and used by ``--prior photos`` only."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from fercnn.errors import FercnnError
from fercnn.labels import EMOTIONS
from fercnn.recognition import ASSETS, Recognizer
from fercnn.recognition.priors import Calibration, prior_weights, shift_prior
from fercnn.training.calibrate import fit_calibration

from .conftest import assert_one_line_error, run_cli

BIAS = np.array([-0.3, -0.6, 0.2, 0.4, 0.1, -0.2, 0.4])


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def draw(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row, drawn from that row's probabilities."""
    return (probabilities.cumsum(1) < rng.random((len(probabilities), 1))).sum(1)


def test_the_fit_recovers_the_scale_and_biases_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, (20000, 7))
    model = softmax(logits)  # under-confident and biased against the truth below
    labels = draw(softmax(1.3 * logits + BIAS), rng)
    scale, bias = fit_calibration(model, labels)
    assert scale == pytest.approx(1.3, abs=0.05)
    # biases are defined up to a constant added to all of them
    np.testing.assert_allclose(bias - bias.mean(), BIAS - BIAS.mean(), atol=0.08)
    scale, bias = fit_calibration(model, draw(model, rng))  # already calibrated: left alone
    assert scale == pytest.approx(1.0, abs=0.05) and np.abs(bias).max() < 0.08


def test_the_calibration_serves_the_prior_shift_and_leaves_fer2013_readings_alone():
    calibration = Calibration(1.5, BIAS.astype(np.float32))
    p = softmax(np.random.default_rng(1).normal(0, 1, (5, 7))).astype(np.float32)
    assert shift_prior(p, None, calibration) is p
    weights = prior_weights("photos", EMOTIONS)
    expected = softmax(1.5 * np.log(p) + BIAS) * weights
    np.testing.assert_allclose(shift_prior(p, weights, calibration),
                               expected / expected.sum(1, keepdims=True), rtol=1e-5)


def test_the_bundled_models_carry_a_calibration_fitted_on_public_test():
    for name in ("default", "accurate", "tiny"):
        recognizer = Recognizer(name)
        entry = recognizer.metadata["calibration"]
        assert entry["split"] == "PublicTest" and entry["faces"] == 3589
        assert entry["views"] == "mirror" and entry["nll"][1] < entry["nll"][0]
        # label smoothing leaves them under-confident: calibrating sharpens them
        assert 1.05 < recognizer.calibration.scale < 1.5


def test_calibrate_writes_a_copy_that_differs_only_in_its_metadata(synthetic_csv, tmp_path):
    out = tmp_path / "tiny.onnx"
    result = run_cli("calibrate", "tiny", "--data", synthetic_csv, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "calibrated on 35 PublicTest faces" in result.stdout
    entry = Recognizer(out).metadata["calibration"]
    assert entry["faces"] == 35 and set(entry["bias"]) == set(EMOTIONS)
    assert entry["nll"][1] <= entry["nll"][0] + 1e-6  # the fit never makes its data less likely
    assert onnx.load(str(out)).graph == onnx.load(str(ASSETS / "tiny.onnx")).graph
    assert Recognizer("tiny").metadata["calibration"]["faces"] == 3589  # the source untouched
    faces = np.random.default_rng(2).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    np.testing.assert_array_equal(Recognizer(out).predict_batch(faces),
                                  Recognizer("tiny").predict_batch(faces))


def test_calibrate_refuses_bad_input_in_one_line(synthetic_csv, tmp_path):
    out = tmp_path / "out.onnx"
    assert_one_line_error(run_cli("calibrate", "tiny", "--out", out, env={"FERCNN_DATA": ""}),
                          "--data")
    not_a_model = tmp_path / "notes.onnx"
    not_a_model.write_text("not a model")
    assert_one_line_error(run_cli("calibrate", not_a_model, "--data", synthetic_csv, "--out",
                                  out), "notes.onnx")
    assert not out.exists()


def test_a_calibration_for_other_classes_or_without_its_scale_is_refused():
    with pytest.raises(FercnnError, match="calibration is for the classes"):
        Calibration.from_metadata({"scale": 1.2, "bias": {"happy": 0.1, "sad": 0.0}},
                                  tuple(EMOTIONS))
    with pytest.raises(FercnnError, match="calibration is unreadable"):
        Calibration.from_metadata({"bias": dict.fromkeys(EMOTIONS, 0.0)}, tuple(EMOTIONS))
    assert Calibration.from_metadata(None, tuple(EMOTIONS)) is None
