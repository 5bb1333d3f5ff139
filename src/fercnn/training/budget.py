"""``--minutes``: a run fitted to a time budget. After each of the first epochs the run keeps
the epochs that fit, and its cosine schedule is refitted to end at zero on the last of them."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict

import torch

from .config import TrainConfig, config_from_dict
from .distributed import Ranks

# epochs after which the plan is made again; the pace is the median epoch after the first, so
# one slow epoch among them (another job on the CPU) no longer cuts the whole run short
PLANNING_EPOCHS = 4


def pace(epoch_seconds: list[float]) -> float:
    """Seconds an epoch for the plan: the median of the epochs after the first (which is
    slower: memory, kernels, caches), or the first while it is alone."""
    return statistics.median(epoch_seconds[1:] or epoch_seconds)


def plan_epochs(minutes: float, spent: float, epoch_seconds: float, epochs: int,
                done: int = 1) -> int:
    """How many epochs fit in ``minutes``, ``spent`` seconds of them gone with the ``done``
    epochs so far, the last of which took ``epoch_seconds``; never more than the config's
    ``epochs``, never fewer than those done."""
    left = minutes * 60 - spent
    return max(done, min(epochs, done + int(left // max(epoch_seconds, 1e-9))))


def fit_to_budget(config: TrainConfig, epochs: int, scheduler, steps_per_epoch: int
                  ) -> TrainConfig:
    """``config`` shortened to ``epochs``, its cosine schedule refitted so that it still ends
    at zero: a schedule cut at the deadline would leave the last weights at a high rate. The
    warm-up shrinks only where it would not end before the last epoch."""
    warmup = min(config.warmup_epochs, max(epochs - 1, 0))
    planned = config_from_dict({**asdict(config), "epochs": epochs, "warmup_epochs": warmup},
                               "the --minutes plan")
    if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
        fn = scheduler.lr_lambdas[0]
        fn.total, fn.warmup = epochs * steps_per_epoch, warmup * steps_per_epoch
        step = scheduler.last_epoch  # the lr of the next step, as the scheduler would set it
        for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs,
                               strict=True):
            group["lr"] = base * fn(step)
    return planned


def replan(unplanned: TrainConfig, minutes: float, epoch_seconds: list[float], clock: float,
           scheduler, steps_per_epoch: int, ranks: Ranks, device: torch.device) -> TrainConfig:
    """The config cut to the epochs that fit, planned after each of the first
    ``PLANNING_EPOCHS`` epochs from the :func:`pace` of those so far, from the config each
    time, not from the last plan. Every rank plans from the same (mean) times, so all stop at
    the same epoch."""
    times = ranks.sum(torch.tensor([pace(epoch_seconds), time.perf_counter() - clock],
                                   device=device))
    times = times.cpu() / ranks.world
    done = len(epoch_seconds)
    epochs = plan_epochs(minutes, float(times[1]), float(times[0]), unplanned.epochs, done=done)
    if ranks.main:
        print(f"--minutes {minutes:g}: {done} epoch{'s' if done > 1 else ''} done, "
              f"{float(times[0]):.0f} s an epoch, so {epochs} of {unplanned.epochs} epochs "
              "fit; the schedule is fitted to them", flush=True)
    return fit_to_budget(unplanned, epochs, scheduler, steps_per_epoch)
