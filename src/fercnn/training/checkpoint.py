"""Checkpoints written atomically, so a run killed at any moment never leaves a broken file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .errors import FercnnError


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
    from .models import create_model

    model = create_model(checkpoint["model_name"])
    model.load_state_dict(checkpoint["model"])
    return model.eval()
