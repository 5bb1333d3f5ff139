"""Evaluate a torch checkpoint on one split (metrics in :mod:`fercnn.metrics`)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .metrics import classification_metrics, write_report


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


def evaluate_checkpoint(checkpoint_path: str | Path, data: str | None = None,
                        split: str = "PrivateTest", out: str | Path | None = None) -> dict:
    """Evaluate a run's ``best.pt`` (or any checkpoint) on ``split``; writes metrics and a
    normalised confusion-matrix PNG into ``out`` when given."""
    from .checkpoint import load_checkpoint
    from .config import config_from_dict
    from .data import load_dataset
    from .models import create_model
    from .train import resolve_device, use_bf16

    checkpoint = load_checkpoint(checkpoint_path)
    config = config_from_dict(checkpoint["config"], str(checkpoint_path))
    device = resolve_device("auto")
    model = create_model(checkpoint["model_name"]).to(device, memory_format=torch.channels_last)
    model.load_state_dict(checkpoint["model"])
    dataset = load_dataset(data or config.data, val_fraction=config.val_fraction)
    part = dataset.split(split)
    images = torch.from_numpy(part.images).unsqueeze(1).to(device)
    logits = predict_logits(model, images, bf16=use_bf16(config.precision, device))
    probabilities = F.softmax(logits, dim=1).cpu().numpy()
    result = {"checkpoint": str(checkpoint_path), "model": checkpoint["model_name"],
              "epoch": checkpoint["epoch"], "split": split,
              **classification_metrics(probabilities, part.labels, ~part.in_training)}
    if out is not None:
        write_report(result, out, config.name)
    return result
