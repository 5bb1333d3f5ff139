"""VGG-style networks with batch norm, sized for 48x48 faces: the accuracy models.

Four stages of two 3x3 convolutions (conv -> BN -> ReLU) halve the resolution 48 -> 24 -> 12 ->
6 -> 3; the 3x3 map is flattened (faces are aligned, so position carries meaning) into a small
dense head with dropout.
"""

from __future__ import annotations

from torch import nn

from ._registry import register
from .dropout import Dropout


def _stage(cin: int, cout: int, convs: int, strided: bool = False) -> list[nn.Module]:
    """``convs`` conv -> BN -> ReLU blocks, then a 2x2 max pool; ``strided``: the first
    convolution halves the resolution itself, in place of the pool."""
    layers: list[nn.Module] = []
    for i in range(convs):
        stride = 2 if strided and i == 0 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=stride, padding=1,
                             bias=False),
                   nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return layers if strided else layers + [nn.MaxPool2d(2)]


class FerVGG(nn.Module):
    """``channels`` and ``convs`` per stage, when given, override the doubling widths from
    ``width`` and the same number of convolutions in every stage; ``strided_stem``: the first
    stage is one stride-2 convolution instead of a full-resolution one and a pool."""

    def __init__(self, width: int = 64, convs: int | tuple[int, ...] = 2, hidden: int = 256,
                 dropout: float = 0.4, channels: tuple[int, ...] | None = None,
                 strided_stem: bool = False) -> None:
        super().__init__()
        channels = channels or (width, width * 2, width * 4, width * 8)
        per_stage = (convs,) * len(channels) if isinstance(convs, int) else convs
        layers: list[nn.Module] = []
        cin = 1
        for i, (cout, n) in enumerate(zip(channels, per_stage, strict=True)):
            layers += _stage(cin, cout, n, strided=strided_stem and i == 0)
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
def vgg_t() -> nn.Module:
    """Widths 16-32-64-128, one convolution a stage, a 128-wide head: 8.4M multiply-accumulates,
    a fourteenth of ``vgg-s``. The first probe of a tiny model (configs/tiny-probe.yaml);
    ``vgg-tiny`` is deeper and faster a call."""
    return FerVGG(width=16, convs=1, hidden=128, dropout=0.3)


@register("vgg-tiny")
def vgg_tiny() -> nn.Module:
    """Widths 16-24-48-96 with 1, 2, 2 and 1 convolutions, the first with stride 2: six
    layers deep for 11.1M multiply-accumulates. A full-resolution first convolution (one input
    channel) was onnxruntime's slowest int8 layer, a third of a one-face call; striding it
    makes a call 1.4x faster (benchmarks/results/tiny_design-amx.md)."""
    return FerVGG(channels=(16, 24, 48, 96), convs=(1, 2, 2, 1), hidden=128, dropout=0.3,
                  strided_stem=True)


@register("vgg-mini")
def vgg_mini() -> nn.Module:
    """``vgg-tiny``'s six layers at widths 24-32-64-128: 20.2M multiply-accumulates, a sixth
    of ``vgg-s``: a photo reader between the two (configs/mini-cached.yaml, mini-turn.yaml)."""
    return FerVGG(channels=(24, 32, 64, 128), convs=(1, 2, 2, 1), hidden=128, dropout=0.3,
                  strided_stem=True)
