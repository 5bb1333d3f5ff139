"""face-api.js's expression network (MIT), rebuilt in torch so it can be fine-tuned on FER-2013.

Its weights were trained by face-api.js's author on "a variety of images from publicly
available datasets as well as images scraped from the web" (its README), so it starts from a
representation of the photos people take, which no network trained here on 48x48 FER-2013
faces has. ``scripts/convert_faceapi.py`` turns the npm package's weights into an ``init:``
checkpoint. The layers are face-api.js's ``FaceFeatureExtractor``: four dense blocks of
depthwise-separable convolutions, each block's outputs summed into the next convolution's
input, global average pooling and one linear layer. TensorFlow's 'same' padding of a
stride-2 convolution pads only the bottom and right (for the even sizes it meets here), and
is kept. The 48x48 gray face is resized to the network's 112x112 colour input inside the
model, so it takes what every fercnn model takes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import register

INPUT_SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)  # face-api.js subtracts these, then divides by 255
WIDTHS = (32, 64, 128, 256)


def same_padding(stride: int) -> nn.ZeroPad2d:
    """TensorFlow's 'same' for a 3x3 kernel: (left, right, top, bottom)."""
    return nn.ZeroPad2d((1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1))


class SeparableConv(nn.Sequential):
    """A 3x3 depthwise convolution without bias, then a 1x1 pointwise one with bias."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(same_padding(stride),
                         nn.Conv2d(cin, cin, 3, stride, groups=cin, bias=False),
                         nn.Conv2d(cin, cout, 1))


class DenseBlock(nn.Module):
    """Four convolutions; each one reads the ReLU of the sum of the block's outputs so far."""

    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        self.conv0 = (nn.Sequential(same_padding(2), nn.Conv2d(cin, cout, 3, 2)) if first
                      else SeparableConv(cin, cout, 2))
        self.convs = nn.ModuleList(SeparableConv(cout, cout) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = F.relu(self.conv0(x))
        for conv in self.convs:
            total = total + conv(F.relu(total))
        return F.relu(total)


class FaceApiExpressionNet(nn.Module):
    """(B, 1, 48, 48) in [0, 1] -> 7 logits in fercnn's class order."""

    def __init__(self, input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        self.input_size = input_size
        self.register_buffer("mean", torch.tensor(MEAN_RGB).view(1, 3, 1, 1) / 255,
                             persistent=False)
        pairs = zip((3, *WIDTHS[:-1]), WIDTHS, strict=True)
        self.blocks = nn.Sequential(*(DenseBlock(cin, cout, first=i == 0)
                                      for i, (cin, cout) in enumerate(pairs)))
        self.fc = nn.Linear(WIDTHS[-1], 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                          align_corners=False)
        return self.read_colour(x.expand(-1, 3, -1, -1))

    def read_colour(self, rgb: torch.Tensor) -> torch.Tensor:
        """Logits of (B, 3, 112, 112) RGB faces in [0, 1], face-api.js's own input: what
        scripts/check_faceapi_port.py compares with face-api.js."""
        return self.fc(self.blocks(rgb - self.mean).mean((2, 3)))


@register("faceapi-dense")
def faceapi_dense() -> nn.Module:
    return FaceApiExpressionNet()
