"""The three models of the original Keras notebook, layer for layer.

Keras details kept on purpose so the reproduction is faithful: 'valid' padding unless 'same',
Glorot-uniform weights with zero biases, BatchNorm momentum 0.99 / epsilon 1e-3, and ReLU
*before* each BatchNorm (as the notebook wrote it).
"""

from __future__ import annotations

from torch import nn

from ._registry import register
from .dropout import Dropout


def keras_init(model: nn.Module) -> nn.Module:
    """Keras defaults: glorot_uniform kernels, zero biases."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def _shallow(dropout: bool) -> nn.Sequential:
    def drop(p: float) -> list[nn.Module]:
        return [Dropout(p)] if dropout else []

    return keras_init(nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(inplace=True),
        nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), *drop(0.25),
        nn.Conv2d(64, 128, 3), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(128, 128, 3), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), *drop(0.25),
        nn.Flatten(),
        nn.Linear(128 * 4 * 4, 1024), nn.ReLU(inplace=True), *drop(0.5),
        nn.Linear(1024, 7),
    ))


@register("shallow")
def shallow() -> nn.Module:
    """4 convs + 2 dense, no regularisation: the notebook's over-fitting baseline."""
    return _shallow(dropout=False)


@register("improved")
def improved() -> nn.Module:
    """``shallow`` with dropout after two pools and the hidden dense layer."""
    return _shallow(dropout=True)


def _conv_relu_bn(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding="same"), nn.ReLU(inplace=True),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)]


@register("deep")
def deep(dropout: float = 0.3) -> nn.Module:
    """15 convs in four blocks (64, 128 5x5, 512, 512), each block ending pool + dropout."""
    layers: list[nn.Module] = []
    cin = 1
    for cout, k, repeats in ((64, 3, 2), (128, 5, 3), (512, 3, 4), (512, 3, 4)):
        for _ in range(repeats):
            layers += _conv_relu_bn(cin, cout, k)
            cin = cout
        layers += [nn.MaxPool2d(2), Dropout(dropout)]
    layers += [nn.Flatten(), nn.Linear(512 * 3 * 3, 512), nn.ReLU(inplace=True),
               Dropout(dropout), nn.Linear(512, 7)]
    return keras_init(nn.Sequential(*layers))
