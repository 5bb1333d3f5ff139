"""Factories for what updates the weights: the optimizer, the learning-rate schedule and an
average of the weights (EMA), each from the config's plain values."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .config import TrainConfig


def make_optimizer(config: TrainConfig, model: nn.Module, implementation: str = "fused"
                   ) -> torch.optim.Optimizer:
    """The config's optimizer, fused by default: one kernel for all parameters, 3x faster than
    the per-parameter "for-loop" or "foreach" here (benchmarks/results/train_speed.md)."""
    params = model.parameters()
    how = {} if implementation == "for-loop" else {implementation: True}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov, weight_decay=config.weight_decay, **how)
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return kind(params, lr=config.lr, eps=config.adam_eps, weight_decay=config.weight_decay,
                **how)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
    """ReduceLROnPlateau steps per epoch on val loss; cosine (with warm-up) steps per batch."""
    if config.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.plateau_factor,
            patience=config.plateau_patience)
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(
            config.epochs * steps_per_epoch, config.warmup_epochs * steps_per_epoch))
    return None


@dataclass
class WarmupCosine:
    """The learning-rate factor at a step: linear warm-up, then a cosine to zero at ``total``.

    An object, not a closure, so that a ``--minutes`` budget can shorten the schedule after the
    first epoch, and the scheduler's state (which keeps an object's fields) remembers that.
    """

    total: int
    warmup: int

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return 0.5 * (1 + math.cos(math.pi * (step - self.warmup)
                                   / max(1, self.total - self.warmup)))


def make_ema(config: TrainConfig, model: nn.Module) -> AveragedModel | None:
    """An exponential moving average of the weights and BN statistics, or None when off.

    With ``ema_warmup`` the decay after n updates is min(ema, (1 + n) / (10 + n)), as in
    TensorFlow's ExponentialMovingAverage: the average then forgets the random initial weights
    within the first epoch. Without it, at 0.999 they keep over half the weight for the first
    700 steps and the validation curve reads near chance for 5-10 epochs. Off by default, so
    the committed EMA configs keep their exact results.
    """
    if not config.ema:
        return None
    update = get_ema_multi_avg_fn(config.ema)
    if config.ema_warmup:
        def update(ema_params: list, params: list, n_averaged: torch.Tensor) -> None:
            n = int(n_averaged)
            get_ema_multi_avg_fn(min(config.ema, (1 + n) / (10 + n)))(ema_params, params, n)
    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
