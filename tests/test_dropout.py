"""fercnn's CPU dropout is a Bernoulli(1 - p) mask scaled by 1 / (1 - p), like nn.Dropout."""

import pytest
import torch

from fercnn.models.dropout import Dropout


@pytest.mark.parametrize("p", [0.25, 0.3, 0.5])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_drops_the_right_share_and_scales_the_rest(p, layout):
    torch.manual_seed(0)
    x = torch.ones(64, 32, 22, 22).contiguous(memory_format=layout)
    y = Dropout(p).train()(x)
    kept = y != 0
    assert y.shape == x.shape
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # 991k elements: sd 0.0005
    assert torch.allclose(y[kept], torch.tensor(1 / (1 - p)))


def test_masks_are_independent_across_the_layout_and_calls():
    torch.manual_seed(0)
    x = torch.ones(8, 16, 12, 12).contiguous(memory_format=torch.channels_last)
    a, b = Dropout(0.5)(x) != 0, Dropout(0.5)(x) != 0
    assert not torch.equal(a, b)
    per_channel = a.float().mean(dim=(0, 2, 3))  # 1,152 elements each: sd 0.015
    assert per_channel.min() > 0.4 and per_channel.max() < 0.6


def test_gradient_flows_through_kept_elements_only():
    torch.manual_seed(0)
    x = torch.rand(4, 8, 6, 6, requires_grad=True)
    y = Dropout(0.25)(x)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)
    assert torch.allclose(x.grad[y != 0], torch.tensor(1 / 0.75))


def test_identity_in_eval_mode_and_at_zero():
    x = torch.rand(2, 3, 4, 4)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x


def test_bf16_and_non_dense_inputs():
    torch.manual_seed(0)
    x = torch.ones(16, 64, dtype=torch.bfloat16)
    assert Dropout(0.5)(x).dtype == torch.bfloat16
    strided = torch.ones(16, 128)[:, ::2]
    y = Dropout(0.5)(strided)
    assert y.shape == strided.shape and 0.3 < (y != 0).float().mean() < 0.7


def test_rejects_a_probability_of_one():
    with pytest.raises(ValueError):
        Dropout(1.0)
