"""Consistent cached distillation (``distill_views: K``): the teachers label K augmented views
of each training image once, before training, and every epoch trains on one of them per image.

Online teachers label every augmented batch, which costs more than the student's own step on a
CPU (102 of the tiny model's 132 s an epoch on an AVX2 host). ``distill_cached`` labels only
the clean face, but then each view learns a target made for another image, which teaches less
(Beyer et al. 2022: the teacher should see exactly the student's view). Here the targets are
made for exactly the views trained on, as online, at the cost of K epochs of teaching.
"""

from __future__ import annotations

import torch

from .augment import augment_appearance, augment_geometry
from .config import TrainConfig
from .distill import Teachers


def view_generator(config: TrainConfig, view: int) -> torch.Generator:
    """The random stream of view ``view``: the same views for a run and its resumption."""
    return torch.Generator().manual_seed(config.seed * 1_000_003 + 7_919 * (view + 1))


@torch.no_grad()
def label_views(teachers: Teachers, images: torch.Tensor, config: TrainConfig, bf16: bool,
                batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """``config.distill_views`` augmented views of each uint8 image (N, 1, 48, 48), as uint8
    (K, N, 1, 48, 48), and the teachers' targets for each (K, N, 7): for the view as stored
    (what the student will see) or, with ``distill_clean``, for it before its photo
    degradations and erasing."""
    count, n = config.distill_views, len(images)
    views = torch.empty((count, *images.shape), dtype=torch.uint8, device=images.device)
    targets = torch.empty((count, n, 7), device=images.device)
    for k in range(count):
        generator = view_generator(config, k)
        for start in range(0, n, batch):
            geometry = augment_geometry(images[start:start + batch].float().div_(255), config,
                                        generator)
            view = augment_appearance(geometry, config, generator)
            stored = view.mul(255).round_().clamp_(0, 255).to(torch.uint8)
            shown = geometry if config.distill_clean else stored.float().div_(255)
            targets[k, start:start + batch] = teachers.soft_targets(
                shown.contiguous(memory_format=torch.channels_last),
                config.distill_temperature, bf16)
            views[k, start:start + batch] = stored
    return views, targets


def pick_views(views: torch.Tensor, targets: torch.Tensor, index: torch.Tensor,
               generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One stored view of each image in ``index``, drawn at random, in [0, 1], and its target."""
    pick = torch.randint(len(views), (len(index),), generator=generator).to(index.device)
    return views[pick, index].float().div_(255), targets[pick, index]
