"""What a run folder keeps to resume exactly: checkpoints written atomically (a run killed at any
moment never leaves a broken file), the history, and the random-number state."""

from __future__ import annotations

import csv
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import FercnnError

HISTORY_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def save_atomic(state: dict, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint file, or the ``best.pt`` of a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise FercnnError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file: say so in one line
        raise FercnnError(f"{path}: not a readable fercnn checkpoint ({e})") from None


def model_from_checkpoint(checkpoint: dict) -> torch.nn.Module:
    """The checkpoint's network with its weights, in eval mode, on the CPU."""
    from ..models import create_model

    model = create_model(checkpoint["model_name"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()


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
