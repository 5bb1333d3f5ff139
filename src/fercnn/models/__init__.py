"""Model registry: ``name -> nn.Module`` factory, plus parameter and MAC counts.

Every model takes a (B, 1, 48, 48) float tensor scaled to [0, 1] and returns 7 logits, so
training, export and recognition treat them all alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..errors import FercnnError
from ..labels import IMAGE_SIZE

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = factory
        return factory

    return add


def model_names() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise FercnnError(f"unknown model {name!r}: choose one of {', '.join(model_names())}")
    return _REGISTRY[name](**kwargs)


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


from . import resnet, seed, vgg  # noqa: E402,F401  (registers the models)
