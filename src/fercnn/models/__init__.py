"""Model registry: ``name -> nn.Module`` factory, plus parameter and MAC counts.

Every model takes a (B, 1, 48, 48) float tensor scaled to [0, 1] and returns 7 logits, so
training, export and recognition treat them all alike.
"""

from __future__ import annotations

import torch
from torch import nn

from ..labels import IMAGE_SIZE
from . import faceapi, resnet, seed, vgg  # noqa: F401  (importing them registers the models)
from ._registry import create_model, model_names, register

__all__ = ["count_macs", "count_params", "create_model", "model_names", "register"]

def count_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one 48x48 image through the convolutions and linear layers."""
    total = 0

    def conv_hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        per_position = module.in_channels // module.groups * module.kernel_size[0] \
            * module.kernel_size[1]
        total += output[0].numel() * per_position

    def linear_hook(module: nn.Linear, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        total += module.in_features * module.out_features

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE))
    model.train(was_training)
    for hook in hooks:
        hook.remove()
    return total

