"""A CIFAR-style ResNet-18 sized for 48x48 faces: a second architecture beside the VGGs.

Ensembles gain most from members that err differently: the hope (not yet measured) is that a
residual network with global average pooling errs unlike a VGG that flattens its last map. One
3x3 convolution at full resolution, then a max pool, so the four stages of two basic blocks run
at 24, 12, 6 and 3 pixels: 11.2M parameters at about two thirds of the full-width VGG's
multiply-accumulates (a stem-free CIFAR ResNet-18 at 48x48 would need three times them, too
slow for a 2-core CPU).
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import register
from .dropout import Dropout


class BasicBlock(nn.Module):
    """Two 3x3 convolutions plus the input (a strided 1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        # The last BN scale starts at one, not zero as in Goyal et al. (2017): with every block
        # the identity, what is left (a 3x3 stem, 1x1 strided projections) sees too little of
        # a face, and in a probe on FER-2013 the network stayed at chance for three epochs.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class FerResNet(nn.Module):
    def __init__(self, width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2),
                 dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(1, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = width
        for stage, count in enumerate(blocks):
            cout = width * 2 ** stage
            for i in range(count):
                layers.append(BasicBlock(cin, cout, stride=2 if stage > 0 and i == 0 else 1))
                cin = cout
        self.features = nn.Sequential(*layers)
        # The last map is 3x3: average it with a fixed 3x3 pool rather than an adaptive one,
        # which exports as ReduceMean, an op int8 ONNX cannot quantise.
        self.head = nn.Sequential(nn.AvgPool2d(3), nn.Flatten(), Dropout(dropout),
                                  nn.Linear(cin, 7))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register("resnet18")
def resnet18() -> nn.Module:
    """Widths 64-128-256-512, two basic blocks per stage: 11.2M parameters."""
    return FerResNet(width=64)
