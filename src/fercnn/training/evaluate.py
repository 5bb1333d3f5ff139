"""Evaluation on the training side: checkpoints of training runs scored through torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..recognition.bundled import is_onnx
from ..tta import views_for
from .checkpoint import load_checkpoint, model_from_checkpoint
from .config import config_from_dict
from .device import predict_logits, resolve_device, use_bf16


def checkpoint_probabilities(checkpoint: dict, images: np.ndarray, tta: bool | str = False
                             ) -> tuple[np.ndarray, dict]:
    """Probabilities of a loaded training checkpoint, and what it is."""
    config = config_from_dict(checkpoint["config"])
    device = resolve_device("auto")
    model = model_from_checkpoint(checkpoint).to(device, memory_format=torch.channels_last)
    bf16 = use_bf16(config.precision, device)
    views = views_for(images, tta)
    probabilities = [torch.softmax(predict_logits(
        model, torch.from_numpy(view).unsqueeze(1).to(device), bf16=bf16), 1).cpu().numpy()
        for view in views]
    return np.mean(probabilities, axis=0), {"model": checkpoint["model_name"],
                                            "epoch": checkpoint["epoch"], "name": config.name,
                                            "data": config.data}


def read_checkpoints(models: list[str], runs: str | Path | None = None) -> dict[str, dict]:
    """The checkpoint of each model that is a training run (under ``runs`` if given), each read
    once; exported models have none."""
    return {m: load_checkpoint(Path(runs) / m if runs else m) for m in models if not is_onnx(m)}

