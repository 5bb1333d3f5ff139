"""VGG-style networks with batch norm, sized for 48x48 faces: the accuracy models.

Four stages of two 3x3 convolutions (conv -> BN -> ReLU) halve the resolution 48 -> 24 -> 12 ->
6 -> 3; the 3x3 map is flattened (faces are aligned, so position carries meaning) into a small
dense head with dropout.
"""

from __future__ import annotations

from torch import nn

from ._registry import register
from .dropout import Dropout


def _stage(cin: int, cout: int, convs: int) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return layers + [nn.MaxPool2d(2)]


class FerVGG(nn.Module):
    def __init__(self, width: int = 64, convs: int = 2, hidden: int = 256,
                 dropout: float = 0.4) -> None:
        super().__init__()
        channels = [width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        cin = 1
        for cout in channels:
            layers += _stage(cin, cout, convs)
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), Dropout(dropout), nn.Linear(cin * 3 * 3, hidden, bias=False),
            nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), Dropout(dropout),
            nn.Linear(hidden, 7))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.features(x))


@register("vgg-s")
def vgg_small() -> nn.Module:
    """Widths 32-64-128-256: 1.76M parameters, 118M multiply-accumulates; the CPU-budget model."""
    return FerVGG(width=32)


@register("vgg")
def vgg() -> nn.Module:
    """Widths 64-128-256-512: 5.87M parameters, 470M multiply-accumulates."""
    return FerVGG(width=64)


@register("vgg-t")
def vgg_tiny() -> nn.Module:
    """Widths 16-32-64-128, one convolution a stage, a 128-wide head: 8.4M multiply-accumulates,
    a fourteenth of ``vgg-s``, for a model called one face at a time (a webcam, a phone)."""
    return FerVGG(width=16, convs=1, hidden=128, dropout=0.3)
