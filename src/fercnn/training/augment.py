"""Batched augmentations: whole-batch tensor ops on the training device, no per-image Python."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from .config import TrainConfig


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the batch left-right."""
    flip = torch.rand(x.shape[0], generator=generator, device="cpu") < 0.5
    flip = flip.to(x.device).view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(-1), x)


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by up to ``max_shift`` pixels (edge-replicated pad, then crop)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator).to(x.device)
    rows = (dy.view(b, 1) + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (dx.view(b, 1) + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


def random_affine(x: torch.Tensor, degrees: float, scale: float, max_shift: int,
                  generator: torch.Generator) -> torch.Tensor:
    """Rotate by up to ``degrees``, zoom by up to ``scale`` (0.1: 0.9-1.1x) and translate by up
    to ``max_shift`` pixels, one random transform per image, in a single grid_sample."""
    b, _, h, w = x.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    angle = uniform(-degrees, degrees) * torch.pi / 180
    zoom = uniform(1 - scale, 1 + scale)
    tx, ty = (uniform(-max_shift, max_shift) * 2 / size for size in (w, h))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_erasing(x: torch.Tensor, probability: float, generator: torch.Generator,
                   area: tuple[float, float] = (0.02, 0.2)) -> torch.Tensor:
    """Blank one random rectangle (random gray value) in a ``probability`` share of images."""
    b, _, h, w = x.shape
    chosen = torch.rand(b, generator=generator) < probability
    fraction = area[0] + (area[1] - area[0]) * torch.rand(b, generator=generator)
    aspect = torch.exp((torch.rand(b, generator=generator) - 0.5) * 2 * 1.1)  # ~0.33-3
    eh = (torch.sqrt(fraction * aspect) * h).clamp(1, h).long()
    ew = (torch.sqrt(fraction / aspect) * w).clamp(1, w).long()
    top = (torch.rand(b, generator=generator) * (h - eh + 1)).long()
    left = (torch.rand(b, generator=generator) * (w - ew + 1)).long()
    fill = torch.rand(b, generator=generator)
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    box = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
           & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1))
           & chosen.view(b, 1, 1))
    box = box.unsqueeze(1).to(x.device)
    return torch.where(box, fill.view(b, 1, 1, 1).to(x.device, x.dtype), x)


def augment_batch(x: torch.Tensor, config: TrainConfig, generator: torch.Generator
                  ) -> torch.Tensor:
    """The config's batched augmentations, in a fixed order (flip, geometry, erasing)."""
    if config.hflip:
        x = random_hflip(x, generator)
    if config.rotate or config.scale:
        x = random_affine(x, config.rotate, config.scale, config.shift, generator)
    elif config.shift:
        x = random_shift(x, config.shift, generator)
    if config.erase:
        x = random_erasing(x, config.erase, generator)
    return x


def mixup(x: torch.Tensor, alpha: float, generator: torch.Generator
          ) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Blend each image with another of the batch: returns images, weight, partner order."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    weight = float(np.random.default_rng(seed).beta(alpha, alpha))
    partner = torch.randperm(len(x), generator=generator).to(x.device)
    return weight * x + (1 - weight) * x[partner], weight, partner
