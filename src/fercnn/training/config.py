"""Training configuration: a plain dataclass, read from YAML, overridden from the command line."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import FercnnError


@dataclass
class TrainConfig:
    name: str = "run"
    model: str = "shallow"
    data: str | None = None  # CSV or image folder; None: $FERCNN_DATA
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"  # adam | adamw | sgd
    lr: float = 1e-3
    momentum: float = 0.9  # sgd only
    nesterov: bool = True  # sgd only
    adam_eps: float = 1e-7  # the Keras default, for the seed models
    weight_decay: float = 0.0  # L2 penalty (adam/sgd) or decoupled (adamw)
    scheduler: str = "none"  # none | plateau | cosine
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    warmup_epochs: int = 0  # cosine only: linear warm-up
    early_stopping_patience: int = 0  # epochs without val-accuracy gain; 0 = off
    label_smoothing: float = 0.0
    hflip: bool = False  # random horizontal flip
    shift: int = 0  # random translation up to this many pixels
    rotate: float = 0.0  # random rotation up to this many degrees
    turn: float = 0.0  # random head turn out of the image plane (pitch, yaw) up to these degrees
    scale: float = 0.0  # random zoom in [1 - scale, 1 + scale]
    erase: float = 0.0  # probability of random erasing (one rectangle per image)
    photo: float = 0.0  # share of each batch degraded as photos degrade faces (augment.py)
    mixup: float = 0.0  # mixup Beta(alpha, alpha); 0 = off
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    ema_warmup: bool = False  # decay min(ema, (1 + n) / (10 + n)) after n updates
    ferplus: str | None = None  # fer2013new.csv: train and validate on FER+ plurality labels
    soft_labels: bool = False  # with ferplus: train against the vote distribution
    crowd_votes: str | None = None  # fer2013new.csv: blend its vote shares into FER-2013 targets
    crowd_weight: float = 0.3  # with crowd_votes: the votes' share of each training target
    init: str | None = None  # run folder or checkpoint whose weights the run starts from
    teachers: list[str] | None = None  # runs, checkpoints or ONNX models (probabilities averaged)
    distill_weight: float = 0.5  # with teachers: the teachers' share of the loss
    distill_temperature: float = 4.0  # with teachers: softening of both sides' probabilities
    distill_cached: bool = False  # teachers run once, on clean images (distill.py)
    distill_clean: bool = False  # teachers see each view before its photo degradations
    limit: int | None = None  # train on the first N training images (smoke runs)
    seed: int = 0
    precision: str = "auto"  # auto | bf16 | fp32
    device: str = "auto"  # auto | cpu | cuda
    val_fraction: float = 0.1  # image folders without val/: share of train/ held out

    def digest(self) -> str:
        """Short hash of the settings that change the trained weights.

        Settings left at their defaults are not hashed, so adding a new setting later does not
        change the digest of existing runs.
        """
        defaults = asdict(TrainConfig())
        keep = {k: v for k, v in asdict(self).items()
                if k not in ("name", "data", "device") and v != defaults[k]}
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:12]


def config_from_dict(values: dict, source: str = "config") -> TrainConfig:
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise FercnnError(f"{source}: unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(known)}")
    config = TrainConfig(**values)
    for name, f in known.items():
        value = getattr(config, name)
        expected = f.type if isinstance(f.type, str) else f.type.__name__
        if value is None and "None" in expected:
            continue
        if "float" in expected and isinstance(value, int) and not isinstance(value, bool):
            setattr(config, name, float(value))
        elif not any(t in expected for t in (type(value).__name__,)):
            raise FercnnError(f"{source}: {name} must be {expected}, got {value!r}")
    choices = {"optimizer": ("adam", "adamw", "sgd"), "scheduler": ("none", "plateau", "cosine"),
               "precision": ("auto", "bf16", "fp32"), "device": ("auto", "cpu", "cuda")}
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise FercnnError(f"{source}: {name} must be one of {', '.join(allowed)}")
    if config.epochs < 1 or config.batch_size < 1:
        raise FercnnError(f"{source}: epochs and batch_size must be positive")
    if config.teachers is not None and (not config.teachers or not all(
            isinstance(t, str) for t in config.teachers)):
        raise FercnnError(f"{source}: teachers must be a list of run folders, checkpoints or "
                          "ONNX models")
    if not 0 <= config.distill_weight <= 1 or config.distill_temperature <= 0:
        raise FercnnError(f"{source}: distill_weight must be in [0, 1] and "
                          "distill_temperature positive")
    if config.distill_cached and not config.teachers:
        raise FercnnError(f"{source}: distill_cached caches the teachers' targets: set teachers")
    if config.distill_clean and (not config.teachers or config.distill_cached):
        raise FercnnError(f"{source}: distill_clean shows online teachers the undegraded view: "
                          "set teachers, without distill_cached")
    if not 0 <= config.crowd_weight <= 1:
        raise FercnnError(f"{source}: crowd_weight must be in [0, 1]")
    if not 0 <= config.photo <= 1:
        raise FercnnError(f"{source}: photo must be in [0, 1]")
    if not 0 <= config.turn <= 45:
        raise FercnnError(f"{source}: turn must be in [0, 45] degrees")
    if config.crowd_votes and config.ferplus:
        raise FercnnError(f"{source}: crowd_votes blends FER+ votes into the FER-2013 labels; "
                          "ferplus replaces those labels: set one of them")
    return config


def load_config(path: str | Path) -> TrainConfig:
    import yaml

    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise FercnnError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise FercnnError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise FercnnError(f"{path}: expected a mapping of settings")
    values.setdefault("name", path.stem)
    return config_from_dict(values, str(path))


def save_config(config: TrainConfig, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(asdict(config), sort_keys=False))
