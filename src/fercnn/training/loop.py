"""The training loop: read it top to bottom in :func:`train`.

The dataset lives in memory as uint8 tensors; a batch is an index into them, augmented as whole
batch tensor ops, run under bf16 autocast with channels_last where that is faster. Each epoch
ends with a validation pass on PublicTest, a ``history.csv`` row, refreshed curves and atomic
``last.pt`` / ``best.pt`` checkpoints that carry everything needed to resume exactly.
"""

from __future__ import annotations

import csv
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .allocator import keep_freed_memory
from .augment import random_affine, random_erasing, random_hflip, random_shift
from .checkpoint import load_checkpoint, save_atomic
from .config import TrainConfig, config_from_dict, save_config
from .distill import Teachers, distillation_loss, load_teachers
from .distributed import Ranks, close_ranks, init_ranks
from .errors import FercnnError
from .labels import EMOTIONS
from .models import count_params, create_model

if TYPE_CHECKING:
    from .data import FerDataset

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FercnnError("--device cuda: no CUDA GPU is available")
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    """bf16 autocast when asked, or by default where the hardware runs it natively."""
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


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


def augment(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
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


@dataclass
class TrainingSet:
    """The training tensors on the device: uint8 images, class labels, optional vote shares."""

    images: torch.Tensor  # (N, 1, 48, 48) uint8
    labels: torch.Tensor  # (N,) int64
    soft: torch.Tensor | None = None  # (N, 7) float training targets, when not the labels

    def __len__(self) -> int:
        return len(self.labels)


def mixup(x: torch.Tensor, alpha: float, generator: torch.Generator
          ) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Blend each image with another of the batch: returns images, weight, partner order."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    weight = float(np.random.default_rng(seed).beta(alpha, alpha))
    partner = torch.randperm(len(x), generator=generator).to(x.device)
    return weight * x + (1 - weight) * x[partner], weight, partner


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
        x = augment(data.images[index].float().div_(255), config, generator)
        y = data.labels[index]
        target = y if data.soft is None else data.soft[index]
        if config.mixup:
            x, weight, partner = mixup(x, config.mixup, generator)
            partner_target = ranks.shard(target[partner])
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
            targets = teachers.soft_targets(x, config.distill_temperature, bf16)
            loss = (1 - config.distill_weight) * loss + config.distill_weight * \
                distillation_loss(logits, targets, config.distill_temperature)
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


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, bf16: bool = False,
                   batch_size: int = 512) -> torch.Tensor:
    """Float32 logits for uint8 images (N, 1, 48, 48) on the model's device, in eval mode."""
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].float().div_(255)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            outputs.append(model(x).float())
    model.train(was_training)
    return torch.cat(outputs)


def validate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             bf16: bool) -> tuple[float, float]:
    logits = predict_logits(model, images, bf16=bf16)
    loss = F.cross_entropy(logits, labels.to(logits.device)).item()
    acc = (logits.argmax(1).cpu() == labels.cpu()).float().mean().item()
    return loss, acc


def write_history(history: list[dict], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(history)
    tmp.replace(path)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def crowd_targets(dataset: FerDataset, votes_path: str, weight: float) -> np.ndarray:
    """(N_train, 7) targets: the FER-2013 label blended with the FER+ crowd's vote shares.

    The crowd's ten votes say how ambiguous a face is and which emotions it is confused with,
    which one noisy label cannot. Images without emotion votes keep their one-hot label.
    """
    from .data import load_ferplus
    from .data.ferplus import check_ferplus_matches

    votes = load_ferplus(votes_path)
    check_ferplus_matches(dataset, votes)
    train = dataset.split_mask("Training")
    labels = np.eye(len(EMOTIONS), dtype=np.float32)[dataset.labels[train]]
    shares = votes.distribution[train]
    voted = shares.sum(axis=1, keepdims=True) > 0
    return np.where(voted, (1 - weight) * labels + weight * shares, labels)


def train(config: TrainConfig, out: str | Path, resume: bool = False,
          minutes: float | None = None) -> dict:
    """Train ``config`` into the run folder ``out``; returns the final metrics.

    With ``minutes``, the first two epochs' times decide how many of the config's epochs fit
    in that budget (counted from here, data loading included), the schedule is fitted to them
    and an EMA warms up; the run folder's config.yaml records the result, so it reproduces
    without a budget.
    Under torchrun (``WORLD_SIZE`` > 1) this process is one rank of a data-parallel run.
    """
    clock = time.perf_counter()
    out = Path(out)
    keep_freed_memory()
    ranks = init_ranks(config.device)
    try:
        return _train(config, out, resume, ranks, minutes, clock)
    finally:
        close_ranks(ranks)


def _train(config: TrainConfig, out: Path, resume: bool, ranks: Ranks,
           minutes: float | None = None, clock: float = 0.0) -> dict:
    from .data import load_dataset
    from .plots import learning_curves

    last_path, best_path = out / "last.pt", out / "best.pt"
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
    # on --resume the run's own weights win over init
    start = initial_weights(config) if config.init and checkpoint is None else None
    if ranks.main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
    ranks.barrier()

    device = resolve_device(config.device)
    if device.type == "cuda" and ranks.active:
        device = torch.device("cuda", ranks.local_rank)
    bf16 = use_bf16(config.precision, device)
    dataset = load_dataset(config.data, val_fraction=config.val_fraction,
                           ferplus=config.ferplus)
    if config.soft_labels and dataset.soft_labels is None:
        raise FercnnError("soft_labels needs FER+ votes: set ferplus to fer2013new.csv")
    train_split, val_split = dataset.split("Training"), dataset.split("PublicTest")
    limit = config.limit or len(train_split)
    soft = train_split.soft_labels if config.soft_labels else None
    if config.crowd_votes:
        soft = crowd_targets(dataset, config.crowd_votes, config.crowd_weight)
    train_set = TrainingSet(
        torch.from_numpy(train_split.images[:limit]).unsqueeze(1).to(device),
        torch.from_numpy(train_split.labels[:limit]).to(device),
        None if soft is None else torch.from_numpy(soft[:limit]).to(device))
    x_val = torch.from_numpy(val_split.images).unsqueeze(1).to(device)
    y_val = torch.from_numpy(val_split.labels).to(device)
    if len(train_set) == 0 or len(y_val) == 0:
        raise FercnnError("the data has no Training or no PublicTest (validation) images")

    teachers = load_teachers(config.teachers, device) if config.teachers else None
    torch.manual_seed(config.seed)
    model = create_model(config.model)
    if start is not None:
        model.load_state_dict(start)
    model = model.to(device, memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    # with EMA, validation, best.pt and exports use the averaged weights
    ema = make_ema(config, model)
    trained = model if not ranks.active else torch.nn.parallel.DistributedDataParallel(model)
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    scheduler = make_scheduler(config, optimizer, steps_per_epoch)
    history: list[dict] = []
    best_acc, start_epoch, stale, budget = -1.0, 0, 0, None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["train_model"] if ema else checkpoint["model"])
        if ema is not None:
            ema.load_state_dict(checkpoint["ema"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(checkpoint["scheduler"])
        history, best_acc = checkpoint["history"], checkpoint["best_val_acc"]
        start_epoch, stale = checkpoint["epoch"], checkpoint["stale_epochs"]
        budget = checkpoint.get("budget")
        set_rng_state(checkpoint["rng"])
        log(ranks, f"resuming {out} after epoch {start_epoch}")

    if minutes and start_epoch > 0 and budget is None:
        log(ranks, f"--minutes {minutes:g} ignored: a budget is planned in a run's first epochs, "
            f"and this run keeps its {config.epochs} epochs")
    params = count_params(model)
    log(ranks, f"{config.name}: {config.model} ({params:,} params) on {device}, "
        f"{'bf16' if bf16 else 'fp32'}, {len(train_set)} train / {len(y_val)} val images"
        + (f", {ranks.world} ranks" if ranks.active else "")
        + (f", distilling from {len(config.teachers)} teacher(s)" if teachers else "")
        + (f", starting from {config.init}" if start is not None else ""))
    unplanned = config  # a --minutes plan shortens the config from the first epochs on
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        lr = optimizer.param_groups[0]["lr"]
        train_loss, train_acc = train_one_epoch(
            trained, train_set, config, optimizer, scheduler, ema, generator, bf16, ranks,
            desc=f"epoch {epoch + 1}/{config.epochs}", teachers=teachers)
        evaluated = model if ema is None else ema.module
        val_loss, val_acc = validate(evaluated, x_val, y_val, bf16)
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val_loss)
        if minutes and start_epoch == 0 and epoch < 2:
            # planned after the first epoch, and again after the second, which runs at the
            # pace of the rest (the first is slower: memory, kernels, caches); every rank
            # plans from the same (mean) times, so all stop at the same epoch
            times = ranks.sum(torch.tensor([time.perf_counter() - started,
                                            time.perf_counter() - clock], device=device))
            times = times.cpu() / ranks.world
            epochs = plan_epochs(minutes, float(times[1]), float(times[0]), unplanned.epochs,
                                 done=epoch + 1)
            log(ranks, f"--minutes {minutes:g}: epoch {epoch + 1} took {float(times[0]):.0f} s, "
                f"so {epochs} of {unplanned.epochs} epochs fit; the schedule is fitted to them")
            config = fit_to_budget(unplanned, epochs, scheduler, steps_per_epoch)
            budget = {"minutes": minutes, "epochs": epochs}
            if ranks.main:
                save_config(config, out / "config.yaml")
        row = {"epoch": epoch + 1, "train_loss": round(train_loss, 6),
               "train_acc": round(train_acc, 6), "val_loss": round(val_loss, 6),
               "val_acc": round(val_acc, 6), "lr": lr,
               "seconds": round(time.perf_counter() - started, 2)}
        history.append(row)
        improved = val_acc > best_acc
        best_acc, stale = (val_acc, 0) if improved else (best_acc, stale + 1)
        state = {"model_name": config.model, "config": asdict(config), "epoch": epoch + 1,
                 "model": evaluated.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict() if scheduler is not None else None,
                 "history": history, "best_val_acc": best_acc, "stale_epochs": stale,
                 "rng": rng_state(), "params": params, "budget": budget}
        if ema is not None:
            state.update(train_model=model.state_dict(), ema=ema.state_dict())
        if ranks.main:
            if improved:
                save_atomic(state, best_path)
            save_atomic(state, last_path)
            write_history(history, out / "history.csv")
            learning_curves(history, out / "curves.png", title=config.name)
        ranks.barrier()
        log(ranks, f"epoch {epoch + 1}/{config.epochs}  train loss {train_loss:.4f} acc "
            f"{train_acc:.4f}  val loss {val_loss:.4f} acc {val_acc:.4f}  lr {lr:.2g}  "
            f"{row['seconds']:.1f}s{'  *best' if improved else ''}")
        if config.early_stopping_patience and stale >= config.early_stopping_patience:
            log(ranks, f"early stop: no val-accuracy gain in {stale} epochs")
            break
        if epoch + 1 >= config.epochs:  # a --minutes plan may have shortened the run
            break

    best_row = max(history, key=lambda r: r["val_acc"])
    metrics = {"name": config.name, "model": config.model, "config_digest": config.digest(),
               "params": params,
               "epochs_run": len(history), "best_epoch": best_row["epoch"],
               "best_val_acc": best_row["val_acc"], "precision": "bf16" if bf16 else "fp32",
               "device": str(device), "ranks": ranks.world, "finished": True,
               "epoch_seconds": round(sum(r["seconds"] for r in history) / len(history), 2),
               **({"budget_minutes": budget["minutes"]} if budget else {})}
    if ranks.main:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def log(ranks: Ranks, message: str) -> None:
    """Print from rank 0 only."""
    if ranks.main:
        print(message, flush=True)
