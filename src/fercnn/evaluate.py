"""Metrics of a trained model on one split: accuracy, clean accuracy, loss, per-class P/R/F1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .labels import EMOTIONS


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


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray,
                           clean: np.ndarray | None = None) -> dict:
    """Accuracy, loss, per-class precision/recall/F1, macro F1 and the confusion matrix.

    ``clean`` marks the rows to count for ``clean_accuracy`` (images not seen in Training).
    """
    predicted = probabilities.argmax(1)
    k = len(EMOTIONS)
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k),
                   where=precision + recall > 0)
    picked = probabilities[np.arange(len(labels)), labels]
    result = {
        "images": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "loss": float(-np.log(np.clip(picked, 1e-12, None)).mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {e: {"precision": float(p), "recall": float(r), "f1": float(f),
                          "support": int(s)}
                      for e, p, r, f, s in zip(EMOTIONS, precision, recall, f1,
                                               confusion.sum(1), strict=True)},
        "confusion": confusion.tolist(),
    }
    if clean is not None:
        result["clean_images"] = int(clean.sum())
        result["clean_accuracy"] = float((predicted[clean] == labels[clean]).mean()) \
            if clean.any() else None
    return result


def evaluate_checkpoint(checkpoint_path: str | Path, data: str | None = None,
                        split: str = "PrivateTest", out: str | Path | None = None) -> dict:
    """Evaluate a run's ``best.pt`` (or any checkpoint) on ``split``; writes metrics and a
    normalised confusion-matrix PNG into ``out`` when given."""
    from .checkpoint import load_checkpoint
    from .config import config_from_dict
    from .data import load_dataset
    from .models import create_model
    from .plots import confusion_matrix
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
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"metrics-{split}.json").write_text(json.dumps(result, indent=2))
        confusion_matrix(np.array(result["confusion"]), out / f"confusion-{split}.png",
                         title=f"{config.name} on {split}: accuracy {result['accuracy']:.1%}")
    return result
