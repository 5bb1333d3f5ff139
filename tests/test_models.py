"""The seed models match the notebook layer for layer: exact parameter counts, 7 logits."""

import json

import pytest
import torch

from fercnn.models import count_macs, count_params, create_model, model_names
from fercnn.models.dropout import Dropout

from .conftest import run_cli

NOTEBOOK_PARAMS = {"shallow": 2_345_607, "improved": 2_345_607, "deep": 20_543_559}


@pytest.mark.parametrize("name", sorted(NOTEBOOK_PARAMS))
def test_parameter_counts_match_the_notebook(name):
    assert count_params(create_model(name)) == NOTEBOOK_PARAMS[name]


def test_deep_batchnorm_statistics_are_the_9216_keras_counts_as_non_trainable():
    model = create_model("deep")
    stats = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert stats == 9_216


@pytest.mark.parametrize("name", model_names())
def test_forward_gives_seven_logits(name):
    model = create_model(name).eval()
    assert model(torch.rand(3, 1, 48, 48)).shape == (3, 7)


def test_improved_is_shallow_plus_three_dropouts():
    dropouts = [m.p for m in create_model("improved").modules() if isinstance(m, Dropout)]
    assert dropouts == [0.25, 0.25, 0.5]
    assert not any(isinstance(m, Dropout) for m in create_model("shallow").modules())


def test_macs_of_shallow_by_hand():
    # conv 46x46x32x9 + 44x44x64x288 + 20x20x128x576 + 8x8x128x1152 + 2048x1024 + 1024x7
    expected = 46 * 46 * 32 * 9 + 44 * 44 * 64 * 288 + 20 * 20 * 128 * 576 \
        + 8 * 8 * 128 * 1152 + 2048 * 1024 + 1024 * 7
    assert count_macs(create_model("shallow")) == expected


def test_models_command_json():
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    for name, params in NOTEBOOK_PARAMS.items():
        assert rows[name]["params"] == params
        assert rows[name]["macs"] > 0


def test_tiny_vgg_macs_by_hand_are_a_fourteenth_of_vgg_s():
    # one 3x3 convolution a stage at 48, 24, 12 and 6 pixels, then 1152 -> 128 -> 7
    expected = 48 * 48 * 16 * 9 + 24 * 24 * 32 * 16 * 9 + 12 * 12 * 64 * 32 * 9 \
        + 6 * 6 * 128 * 64 * 9 + 1152 * 128 + 128 * 7
    tiny = count_macs(create_model("vgg-t"))
    assert tiny == expected
    assert count_macs(create_model("vgg-s")) / tiny > 13


def test_the_tiny_models_strided_stem_halves_the_face_before_six_convolutions():
    model = create_model("vgg-tiny")
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] + [(1, 1)] * 5
    # the stem at 24 pixels, two at 24, two at 12, one at 6, then 864 -> 128 -> 7
    expected = 24 * 24 * 16 * 9 + 24 * 24 * 9 * (16 * 24 + 24 * 24) \
        + 12 * 12 * 9 * (24 * 48 + 48 * 48) + 6 * 6 * 9 * 48 * 96 + 864 * 128 + 128 * 7
    assert count_macs(model) == expected
    assert model(torch.rand(2, 1, 48, 48)).shape == (2, 7)


def test_vgg_mini_is_vgg_tiny_widened_to_24_32_64_128():
    mini, tiny = create_model("vgg-mini"), create_model("vgg-tiny")
    layers = [type(m) for m in mini.features]
    assert layers == [type(m) for m in tiny.features]
    convs = [m for m in mini.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [24, 32, 32, 64, 64, 128]
    expected = 24 * 24 * 24 * 9 + 24 * 24 * 9 * (24 * 32 + 32 * 32) \
        + 12 * 12 * 9 * (32 * 64 + 64 * 64) + 6 * 6 * 9 * 64 * 128 + 1152 * 128 + 128 * 7
    assert count_macs(mini) == expected
    assert mini(torch.rand(2, 1, 48, 48)).shape == (2, 7)
