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
    one = count_macs(create_model("vgg-s"))
    assert bench.model_macs(Recognizer(DEFAULT_MODEL).metadata) == one
    assert bench.model_macs(Recognizer(BUNDLED_MODELS["accurate"]).metadata) == 3 * one


def test_the_ceiling_runs_both_precisions(bench):
    speeds = bench.matmul_gops(threads=1, sizes=(32, 64))
    assert set(speeds) == {"fp32", "int8"}
    assert all(gops > 0 for gops in speeds.values())
