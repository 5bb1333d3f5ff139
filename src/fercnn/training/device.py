"""Where and in which precision torch runs, and logits for whole image sets: shared by the
training loop and checkpoint evaluation, so neither imports the other."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import FercnnError


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
