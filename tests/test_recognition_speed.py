"""benchmarks/recognition_speed.py: what its ceiling ratios are computed from."""

from __future__ import annotations

import pytest

from fercnn.models import count_macs, create_model
from fercnn.recognition import BUNDLED_MODELS, DEFAULT_MODEL, Recognizer

from .conftest import load_benchmark


@pytest.fixture
def bench():
    return load_benchmark("recognition_speed")  # it imports train_speed


def test_an_ensemble_counts_every_members_multiply_accumulates(bench):
    one, tiny = (count_macs(create_model(name)) for name in ("vgg-s", "vgg-tiny"))
    assert bench.model_macs(Recognizer(BUNDLED_MODELS["tiny"]).metadata) == tiny
    # both weigh vgg-s networks (three in accurate, the photo fine-tune in the default) with
    # the small student
    assert bench.model_macs(Recognizer(BUNDLED_MODELS["accurate"]).metadata) == 3 * one + tiny
    assert bench.model_macs(Recognizer(DEFAULT_MODEL).metadata) == one + tiny


def test_the_ceiling_runs_both_precisions(bench):
    speeds = bench.matmul_gops(threads=1, sizes=(32, 64))
    assert set(speeds) == {"fp32", "int8"}
    assert all(gops > 0 for gops in speeds.values())


def test_the_fer_table_gives_each_models_speed_as_a_multiple_of_fers(bench):
    fer = {"model": "fer m.tflite", "size_kb": 90, "faces_per_s_one_at_a_time": 400,
           "faces_per_s_batch_64": 1000}
    row = {"model": "tiny.onnx", "quantization": "int8", "faces_per_s_one_at_a_time": 1300,
           "faces_per_s_batch_64": 2500}
    lines = bench.against_fer([row], fer)
    assert lines[-1] == "| tiny.onnx (int8) | 1300 | 3.25x | 2500 | 2.50x |"


def test_an_interpreter_without_fer_stops_the_benchmark_with_its_reason(bench):
    import sys

    with pytest.raises(SystemExit, match="fer baseline failed.*ai_edge_litert"):
        bench.fer_faces_per_second(sys.executable, threads=1, one_face_threads=1)
