"""The training loop: read it top to bottom in :func:`train`.

The dataset lives in memory as uint8 tensors; a batch is an index into them, augmented as whole
batch tensor ops, run under bf16 autocast with channels_last where that is faster. Each epoch
ends with a validation pass on PublicTest, a ``history.csv`` row, refreshed curves and atomic
``last.pt`` / ``best.pt`` checkpoints that carry everything needed to resume exactly.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel

from ..errors import FercnnError
from ..models import count_params, create_model
from . import budget
from .allocator import keep_freed_memory
from .augment import augment_appearance, augment_geometry, mixup
from .checkpoint import load_checkpoint, rng_state, save_atomic, set_rng_state, write_history
from .config import TrainConfig, config_from_dict, save_config
from .device import predict_logits, resolve_device, use_bf16
from .distill import Teachers, distillation_loss, load_teachers, stored_targets
from .distributed import Ranks, close_ranks, init_ranks
from .optim import make_ema, make_optimizer, make_scheduler
from .tensors import TrainingSet, load_tensors


def train(config: TrainConfig, out: str | Path, resume: bool = False,
          minutes: float | None = None,
          on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train ``config`` into the run folder ``out``; returns the final metrics.

    With ``minutes``, the first epochs' times decide how many of the config's epochs fit
    in that budget (counted from here, data loading included), the schedule is fitted to them
    and an EMA warms up; the run folder's config.yaml records the result, so it reproduces
    without a budget.
    Under torchrun (``WORLD_SIZE`` > 1) this process is one rank of a data-parallel run.
    ``on_epoch`` sees each epoch's history row once its checkpoint is on disk, and may raise
    to end the run there (a hyper-parameter search prunes so; the loop knows nothing of it).
    """
    clock = time.perf_counter()
    out = Path(out)
    keep_freed_memory()
    ranks = init_ranks(config.device)
    try:
        return _train(config, out, resume, ranks, minutes, clock, on_epoch)
    finally:
        close_ranks(ranks)


def _train(config: TrainConfig, out: Path, resume: bool, ranks: Ranks,
           minutes: float | None = None, clock: float = 0.0,
           on_epoch: Callable[[dict], None] | None = None) -> dict:
    config, checkpoint, start = open_run(config, out, resume, minutes, ranks)
    device = training_device(config, ranks)
    train_set, x_val, y_val = load_tensors(config, device)
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    run = build(config, device, ranks, steps_per_epoch, start)
    if config.distill_cached:
        train_set.taught = teach_once(config, run, train_set, ranks)
    progress = Progress.restore(checkpoint, run)
    if checkpoint is not None:
        log(ranks, f"resuming {out} after epoch {progress.start_epoch}")
    if minutes and progress.start_epoch > 0 and progress.budget is None:
        log(ranks, f"--minutes {minutes:g} ignored: a budget is planned in a run's first "
            f"epochs, and this run keeps its {config.epochs} epochs")
    log(ranks, describe(config, run, len(train_set), len(y_val)))
    unplanned = config  # a --minutes plan shortens the config from the first epochs on
    epoch_seconds: list[float] = []
    for epoch in range(progress.start_epoch, config.epochs):
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        lr = run.optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_one_epoch(
            run.trained, train_set, config, run.optimizer, run.scheduler, run.ema, generator,
            run.bf16, ranks, desc=f"epoch {epoch + 1}/{config.epochs}", teachers=run.teachers)
        val_loss, val_acc = validate(run.evaluated, x_val, y_val, run.bf16)
        if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            run.scheduler.step(val_loss)
        epoch_seconds.append(time.perf_counter() - started)
        if minutes and progress.start_epoch == 0 and epoch < budget.PLANNING_EPOCHS:
            config = budget.replan(unplanned, minutes, epoch_seconds, clock, run.scheduler,
                                   steps_per_epoch, ranks, device)
            progress.budget = {"minutes": minutes, "epochs": config.epochs}
            if ranks.main:
                save_config(config, out / "config.yaml")
        row = {"epoch": epoch + 1, "train_loss": round(train_loss, 6),
               "train_acc": round(train_acc, 6), "val_loss": round(val_loss, 6),
               "val_acc": round(val_acc, 6), "lr": lr,
               "seconds": round(time.perf_counter() - started, 2)}
        improved = progress.record(row)
        save_epoch(config, run, progress, out, ranks, improved)
        log(ranks, f"epoch {epoch + 1}/{config.epochs}  train loss {train_loss:.4f} acc "
            f"{train_acc:.4f}  val loss {val_loss:.4f} acc {val_acc:.4f}  lr {lr:.2g}  "
            f"{row['seconds']:.1f}s{'  *best' if improved else ''}")
        if on_epoch is not None:
            on_epoch(row)
        if config.early_stopping_patience and progress.stale >= config.early_stopping_patience:
            log(ranks, f"early stop: no val-accuracy gain in {progress.stale} epochs")
            break
        if epoch + 1 >= config.epochs:  # a --minutes plan may have shortened the run
            break
    return finish(config, run, progress, out, ranks)


# --- set-up ------------------------------------------------------------------------------


def open_run(config: TrainConfig, out: Path, resume: bool, minutes: float | None,
             ranks: Ranks) -> tuple[TrainConfig, dict | None, dict | None]:
    """The config this run trains, the checkpoint it resumes from (None for a new run) and
    the ``init`` weights it starts from (None when resumed: the run's own weights win); the
    run folder is made and its config.yaml written. A resumed run keeps its own plan."""
    last_path = out / "last.pt"
    checkpoint = None
    if resume and last_path.exists():
        checkpoint = load_checkpoint(last_path)
        saved = config_from_dict(checkpoint["config"], str(last_path))
        if checkpoint.get("budget"):  # the run's plan stands, --minutes given or not
            config = config_from_dict({**asdict(config), "epochs": saved.epochs,
                                       "warmup_epochs": saved.warmup_epochs,
                                       "ema_warmup": saved.ema_warmup}, str(last_path))
        if saved.digest() != config.digest():
            raise FercnnError(f"{out}: --resume with different settings than the run was "
                              "started with; use another --out")
    elif last_path.exists():
        raise FercnnError(f"{out} already holds a run: pass --resume to continue it, "
                          "or choose another --out")
    if minutes and checkpoint is None and config.ema and not config.ema_warmup:
        # an EMA sized for the whole schedule lags in the few epochs a budget may keep (the
        # CPU-budget recipe in 23 epochs: 63.9% PublicTest without warm-up, 65.5% with, the
        # raw weights 65.6%); set from the first step, before the plan, so that config.yaml
        # reproduces the run
        config = config_from_dict({**asdict(config), "ema_warmup": True}, "the --minutes plan")
        log(ranks, "--minutes: the EMA warms up (ema_warmup), as a shortened schedule needs")
    start = initial_weights(config) if config.init and checkpoint is None else None
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
    ranks.barrier()
    return config, checkpoint, start


def training_device(config: TrainConfig, ranks: Ranks) -> torch.device:
    """The config's device; under torchrun on GPUs, this rank's own GPU."""
    device = resolve_device(config.device)
    if device.type == "cuda" and ranks.active:
        device = torch.device("cuda", ranks.local_rank)
    return device


def initial_weights(config: TrainConfig) -> dict:
    """The weights of ``config.init`` (a run's best, EMA-averaged where it kept an average):
    fine-tuning, e.g. a FER-2013 network continued on FER+ votes. Read before the data, so a
    wrong path fails at once."""
    try:
        source = load_checkpoint(config.init)
    except FercnnError as e:
        raise FercnnError(f"init: {e}") from None
    if source.get("model_name") != config.model:
        raise FercnnError(f"init: {config.init} holds a {source.get('model_name')!r} network, "
                          f"but this config trains {config.model!r}")
    return source["model"]


@dataclass
class Run:
    """What trains: the network (wrapped for DDP as ``trained``), its optional EMA, the
    optimizer, the schedule and the teachers of a distillation."""

    model: nn.Module
    trained: nn.Module
    ema: AveragedModel | None
    optimizer: torch.optim.Optimizer
    scheduler: object
    teachers: Teachers | None
    device: torch.device
    bf16: bool
    ranks: Ranks
    started_from: str | None = None

    @property
    def evaluated(self) -> nn.Module:
        """With an EMA, validation, best.pt and exports use the averaged weights."""
        return self.model if self.ema is None else self.ema.module


def build(config: TrainConfig, device: torch.device, ranks: Ranks, steps_per_epoch: int,
          start: dict | None) -> Run:
    """The network and what trains it, from the config and the weights it starts from."""
    teachers = load_teachers(config.teachers, device) if config.teachers else None
    torch.manual_seed(config.seed)
    model = create_model(config.model)
    if start is not None:
        model.load_state_dict(start)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    ema = make_ema(config, model)
    trained = model if not ranks.active else torch.nn.parallel.DistributedDataParallel(model)
    scheduler = make_scheduler(config, optimizer, steps_per_epoch)
    return Run(model, trained, ema, optimizer, scheduler, teachers, device,
               use_bf16(config.precision, device), ranks,
               config.init if start is not None else None)


@dataclass
class Progress:
    """Where a run stands: its history, best validation accuracy, epochs without a gain, and
    the --minutes plan if it has one."""

    history: list[dict] = field(default_factory=list)
    best_acc: float = -1.0
    start_epoch: int = 0
    stale: int = 0
    budget: dict | None = None

    @classmethod
    def restore(cls, checkpoint: dict | None, run: Run) -> Progress:
        """A new run's progress, or a checkpoint's, loading its states into ``run``."""
        if checkpoint is None:
            return cls()
        run.model.load_state_dict(checkpoint["train_model"] if run.ema else checkpoint["model"])
        if run.ema is not None:
            run.ema.load_state_dict(checkpoint["ema"])
        run.optimizer.load_state_dict(checkpoint["optimizer"])
        if run.scheduler is not None:
            run.scheduler.load_state_dict(checkpoint["scheduler"])
        set_rng_state(checkpoint["rng"])
        return cls(checkpoint["history"], checkpoint["best_val_acc"], checkpoint["epoch"],
                   checkpoint["stale_epochs"], checkpoint.get("budget"))

    def record(self, row: dict) -> bool:
        """Add an epoch's row; True when it is the best so far."""
        self.history.append(row)
        improved = row["val_acc"] > self.best_acc
        self.best_acc, self.stale = (row["val_acc"], 0) if improved else \
            (self.best_acc, self.stale + 1)
        return improved


def describe(config: TrainConfig, run: Run, n_train: int, n_val: int) -> str:
    return (f"{config.name}: {config.model} ({count_params(run.model):,} params) on "
            f"{run.device}, {'bf16' if run.bf16 else 'fp32'}, {n_train} train / {n_val} val "
            "images" + (f", {run.ranks.world} ranks" if run.ranks.active else "")
            + (f", distilling from {len(config.teachers)} teacher(s)" if config.teachers else "")
            + (" (targets cached)" if config.distill_cached else "")
            + (" (before the photo degradations)" if config.distill_clean else "")
            + (f", starting from {run.started_from}" if run.started_from else ""))


def teach_once(config: TrainConfig, run: Run, train_set: TrainingSet, ranks: Ranks
               ) -> torch.Tensor:
    """The teachers' cached targets for every training image (``distill_cached``); the
    teachers are then let go, so no epoch runs them."""
    started = time.perf_counter()
    taught, read = stored_targets(run.teachers, train_set.images, config.distill_temperature,
                                  run.bf16)
    run.teachers = None
    log(ranks, f"teachers' targets cached for {len(taught)} images (and their mirrors) in "
        f"{time.perf_counter() - started:.0f}s" + (", read from fercnn's cache" if read else ""))
    return taught


# --- one epoch ---------------------------------------------------------------------------


def training_views(images: torch.Tensor, config: TrainConfig, generator: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A batch's augmented views in [0, 1], and with ``distill_clean`` what the teachers see
    instead: the same views before their photo degradations and erasing, so a target says
    what the face shows, not what survived the damage."""
    geometry = augment_geometry(images.float().div_(255), config, generator)
    views = augment_appearance(geometry, config, generator)
    return views, geometry if config.distill_clean else None


def train_one_epoch(model: nn.Module, data: TrainingSet, config: TrainConfig,
                    optimizer: torch.optim.Optimizer, scheduler, ema: AveragedModel | None,
                    generator: torch.Generator, bf16: bool, ranks: Ranks,
                    desc: str, teachers: Teachers | None = None) -> tuple[float, float]:
    """One pass over the training tensors; returns mean loss and accuracy.

    Under torchrun every rank augments the same global batch and trains on its slice of it.
    """
    from tqdm import tqdm

    model.train()
    n, device = len(data), data.images.device
    order = torch.randperm(n, generator=generator).to(device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    started = time.perf_counter()
    bar = tqdm(total=n, desc=desc, unit="img", leave=False,
               disable=None if ranks.main else True)
    for start in range(0, n, config.batch_size):
        index = order[start:start + config.batch_size]
        x, shown = training_views(data.images[index], config, generator)
        y = data.labels[index]
        target = y if data.soft is None else data.soft[index]
        taught = None if data.taught is None else data.taught[index]
        if config.mixup:
            x, weight, partner = mixup(x, config.mixup, generator)
            partner_target = ranks.shard(target[partner])
            if taught is not None:
                taught = weight * taught + (1 - weight) * taught[partner]
            if shown is not None:
                shown = weight * shown + (1 - weight) * shown[partner]
            if weight < 0.5:  # accuracy counts the label of the image that dominates the blend
                y = y[partner]
        x, y, target = ranks.shard(x), ranks.shard(y), ranks.shard(target)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), target, label_smoothing=config.label_smoothing)
        if config.mixup:
            loss = weight * loss + (1 - weight) * F.cross_entropy(
                logits.float(), partner_target, label_smoothing=config.label_smoothing)
        if teachers is not None:
            shown = x if shown is None else ranks.shard(shown)
            taught = teachers.soft_targets(shown, config.distill_temperature, bf16)
        elif taught is not None:
            taught = ranks.shard(taught)
        if taught is not None:
            loss = (1 - config.distill_weight) * loss + config.distill_weight * \
                distillation_loss(logits, taught, config.distill_temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if ema is not None:
            ema.update_parameters(model)
        if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            scheduler.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        done = min(start + config.batch_size, n)
        bar.update(len(index))
        if ranks.main and (bar.n % (config.batch_size * 20) < config.batch_size or done == n):
            bar.set_postfix(loss=f"{loss_sum.item() * ranks.world / done:.3f}",
                            acc=f"{correct.item() * ranks.world / done:.3f}",
                            img_s=f"{done / (time.perf_counter() - started):.0f}")
    bar.close()
    ranks.sum(loss_sum)
    ranks.sum(correct)
    return loss_sum.item() / n, correct.item() / n


def validate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             bf16: bool) -> tuple[float, float]:
    logits = predict_logits(model, images, bf16=bf16)
    loss = F.cross_entropy(logits, labels.to(logits.device)).item()
    acc = (logits.argmax(1).cpu() == labels.cpu()).float().mean().item()
    return loss, acc



# --- checkpoint and finish ---------------------------------------------------------------


def save_epoch(config: TrainConfig, run: Run, progress: Progress, out: Path, ranks: Ranks,
               improved: bool) -> None:
    """Atomic last.pt (and best.pt when improved), history.csv and curves.png, on rank 0."""
    from ..plots import learning_curves

    state = {"model_name": config.model, "config": asdict(config),
             "epoch": progress.history[-1]["epoch"], "model": run.evaluated.state_dict(),
             "optimizer": run.optimizer.state_dict(),
             "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
             "history": progress.history, "best_val_acc": progress.best_acc,
             "stale_epochs": progress.stale, "rng": rng_state(),
             "params": count_params(run.model), "budget": progress.budget}
    if run.ema is not None:
        state.update(train_model=run.model.state_dict(), ema=run.ema.state_dict())
    if ranks.main:
        if improved:
            save_atomic(state, out / "best.pt")
        save_atomic(state, out / "last.pt")
        write_history(progress.history, out / "history.csv")
        learning_curves(progress.history, out / "curves.png", title=config.name)
    ranks.barrier()


def finish(config: TrainConfig, run: Run, progress: Progress, out: Path, ranks: Ranks) -> dict:
    """The run's metrics.json: best epoch, its validation accuracy, how it ran."""
    history = progress.history
    best_row = max(history, key=lambda r: r["val_acc"])
    metrics = {"name": config.name, "model": config.model, "config_digest": config.digest(),
               "params": count_params(run.model),
               "epochs_run": len(history), "best_epoch": best_row["epoch"],
               "best_val_acc": best_row["val_acc"],
               "precision": "bf16" if run.bf16 else "fp32",
               "device": str(run.device), "ranks": ranks.world, "finished": True,
               "epoch_seconds": round(sum(r["seconds"] for r in history) / len(history), 2),
               **({"budget_minutes": progress.budget["minutes"]} if progress.budget else {})}
    if ranks.main:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def log(ranks: Ranks, message: str) -> None:
    """Print from rank 0 only."""
    if ranks.main:
        print(message, flush=True)
