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
                  generator: torch.Generator, turn: float = 0.0) -> torch.Tensor:
    """Rotate by up to ``degrees``, zoom by up to ``scale`` (0.1: 0.9-1.1x) and translate by up
    to ``max_shift`` pixels, one random transform per image, in a single grid_sample. With
    ``turn``, the face is also turned out of the image plane (``_turned``) in the same
    sampling."""
    b, _, h, w = x.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    angle = uniform(-degrees, degrees) * torch.pi / 180
    zoom = uniform(1 - scale, 1 + scale)
    tx, ty = (uniform(-max_shift, max_shift) * 2 / size for size in (w, h))
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    if turn:
        return _sample_homography(x, _turned(theta, turn, generator))
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# distance from the camera to the face, in half crop widths: two crop widths, about 40 cm for
# a face, as at a webcam or in a selfie; farther, the turn's perspective shrinks
TURN_DISTANCE = 4.0


def _turned(theta: torch.Tensor, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """``theta``'s affine map (output to source, normalised coordinates) after a random turn
    of the face plane about its centre by up to ``degrees`` up or down (pitch) and sideways
    (yaw), seen in perspective: the head poses of photos, which FER-2013's mostly frontal faces
    and an in-plane rotation do not show. A looked-down face's forehead comes nearer the camera
    and its chin goes away."""
    b = theta.shape[0]
    pitch, yaw = (_uniform(b, -degrees, degrees, generator) * torch.pi / 180 for _ in range(2))
    cp, sp, cy, sy = torch.cos(pitch), torch.sin(pitch), torch.cos(yaw), torch.sin(yaw)
    zero, one = torch.zeros(b), torch.ones(b)
    # rotation R = R_yaw @ R_pitch; the plane's points (x, y, 0) go to R (x, y, 0) + (0, 0, d),
    # then project with focal length d: plane -> image is diag(d, d, 1) [r1 r2 t]
    r1 = torch.stack([cy, zero, -sy], 1)
    r2 = torch.stack([sy * sp, cp, cy * sp], 1)
    d = TURN_DISTANCE
    forward = torch.stack([r1, r2, torch.stack([zero, zero, one * d], 1)], 2)
    forward = forward * torch.tensor([d, d, 1.0]).view(1, 3, 1)
    affine = torch.cat([theta, torch.tensor([0.0, 0.0, 1.0]).expand(b, 1, 3)], 1)
    return affine @ torch.linalg.inv(forward) * d  # output -> turned face -> source


def _sample_homography(x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``x`` resampled through per-image 3x3 maps from output to source pixels (normalised
    coordinates, as affine_grid's), with the border replicated."""
    b, _, h, w = x.shape
    # the output's pixel centres, as affine_grid gives them for the identity map
    centres = F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False)
    base = torch.cat([centres, torch.ones(1, h, w, 1)], -1).view(1, h * w, 3)
    mapped = base @ matrix.transpose(1, 2)
    grid = (mapped[..., :2] / mapped[..., 2:]).view(b, h, w, 2)
    return F.grid_sample(x, grid.to(x.device, x.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)


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


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def random_downscale(x: torch.Tensor, sizes: tuple[int, ...], generator: torch.Generator
                     ) -> torch.Tensor:
    """Each image down to one of ``sizes`` pixels (area averaging) and back up (bilinear): the
    blur of a small face in a photo, upscaled to 48x48 by the crop."""
    pick = torch.randint(len(sizes), (x.shape[0],), generator=generator)
    out = x.clone()
    for i, size in enumerate(sizes):
        chosen = (pick == i).nonzero().flatten().to(x.device)
        if len(chosen) and size < x.shape[-1]:
            small = F.interpolate(x[chosen], size=size, mode="area")
            out[chosen] = F.interpolate(small, size=x.shape[-2:], mode="bilinear",
                                        align_corners=False)
    return out


def random_tone(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Exposure as cameras vary it: gamma in [0.6, 1.6], contrast in [0.6, 1.4] about each
    image's mean, brightness +-0.1, then sensor noise of up to 0.03 (on a 0-1 scale)."""
    b = x.shape[0]
    gamma = torch.exp(_uniform(b, -0.5, 0.5, generator)).view(b, 1, 1, 1).to(x.device)
    x = x.clamp_min(1e-4) ** gamma
    contrast = _uniform(b, 0.6, 1.4, generator).view(b, 1, 1, 1).to(x.device)
    shift = _uniform(b, -0.1, 0.1, generator).view(b, 1, 1, 1).to(x.device)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + shift
    sigma = _uniform(b, 0.0, 0.03, generator).view(b, 1, 1, 1).to(x.device)
    noise = torch.randn(x.shape, generator=generator).to(x.device)
    return (x + sigma * noise).clamp(0, 1)


def random_jpeg(x: torch.Tensor, generator: torch.Generator, low: int = 30, high: int = 90
                ) -> torch.Tensor:
    """Each image through OpenCV's JPEG encoder at a quality in [low, high]: the block and
    ringing artefacts of compressed photos. There is no batched JPEG in torch (torchvision's
    is unavailable here), so this one is a loop of 48x48 encodes, about 20 us each."""
    import cv2

    quality = torch.randint(low, high + 1, (x.shape[0],), generator=generator).tolist()
    pixels = (x.detach().float().cpu().numpy()[:, 0] * 255).round().astype(np.uint8)
    out = []
    for image, q in zip(pixels, quality, strict=True):
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        out.append(cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if ok else image)
    return torch.from_numpy(np.stack(out)).unsqueeze(1).to(x.device, x.dtype) / 255


def random_border(x: torch.Tensor, generator: torch.Generator, most: float = 0.2
                  ) -> torch.Tensor:
    """Each side of each image, with even odds, cut by up to ``most`` of its width and the cut
    filled by repeating the new edge: a face that fills its photo, whose FER-2013 framing
    reaches past the photo's edges, which the crop replicates (wild-dev's colour face crops
    lose 10-35% of the crop that way)."""
    b, _, h, w = x.shape
    cuts = (torch.rand(b, 4, generator=generator) < 0.5) * torch.rand(b, 4, generator=generator)
    cuts = (cuts * most * torch.tensor([h, h, w, w])).long().to(x.device)
    top, bottom, left, right = cuts.unbind(1)
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    rows = torch.maximum(torch.minimum(rows, (h - 1 - bottom).view(b, 1)), top.view(b, 1))
    cols = torch.maximum(torch.minimum(cols, (w - 1 - right).view(b, 1)), left.view(b, 1))
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return x[batch, channel, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]


def photo_degrade(x: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """What the photo path does to faces that FER-2013's never went through, on a random
    ``share`` of the batch: the photo's edge inside the crop, downscale blur (small faces),
    camera exposure and noise, JPEG. Box jitter and the rotation left after alignment are the
    geometry augmentations'."""
    chosen = (torch.rand(x.shape[0], generator=generator) < share).nonzero().flatten()
    if not len(chosen):
        return x
    part = x[chosen.to(x.device)]
    part = random_border(part, generator)
    part = random_downscale(part, (12, 16, 24, 32, 48), generator)
    part = random_tone(part, generator)
    part = random_jpeg(part, generator)
    out = x.clone()
    out[chosen.to(x.device)] = part
    return out


def augment_geometry(x: torch.Tensor, config: TrainConfig, generator: torch.Generator
                     ) -> torch.Tensor:
    """The config's flip, rotation, zoom and shift: where the face is and how it is turned."""
    if config.hflip:
        x = random_hflip(x, generator)
    if config.rotate or config.scale or config.turn:
        x = random_affine(x, config.rotate, config.scale, config.shift, generator, config.turn)
    elif config.shift:
        x = random_shift(x, config.shift, generator)
    return x


def augment_appearance(x: torch.Tensor, config: TrainConfig, generator: torch.Generator
                       ) -> torch.Tensor:
    """The config's photo degradations and erasing: what hides or spoils the face."""
    if config.photo:
        x = photo_degrade(x, config.photo, generator)
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
