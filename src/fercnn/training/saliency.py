"""Grad-CAM (Selvaraju et al., 2017) for trained checkpoints, through captum's LayerGradCam:
which parts of a face the last convolution's evidence for a class comes from.

The layer is found by running the network, not by its name, so every registered model (and any
added later) works: the last ``Conv2d`` called in a forward pass.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..labels import IMAGE_SIZE
from ..recognition.occlusion import Saliency, occlusion_maps
from .checkpoint import model_from_checkpoint
from .device import predict_logits


def last_conv(model: nn.Module) -> nn.Conv2d:
    """The convolution a forward pass of ``model`` calls last (its finest-grained evidence
    that still has a place in the face)."""
    called: list[nn.Conv2d] = []
    hooks = [m.register_forward_hook(lambda module, _i, _o: called.append(module))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE))
    finally:
        for hook in hooks:
            hook.remove()
    if not called:
        raise ValueError(f"{type(model).__name__} has no convolution for Grad-CAM")
    return called[-1]


def explainable(model: nn.Module) -> nn.Module:
    """A copy in eval mode, on the CPU, whose activations are not overwritten in place: the
    gradients captum takes at the layer must see the layer's own output."""
    model = copy.deepcopy(model).cpu().float().eval()
    for module in model.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return model


def gradcam_maps(model: nn.Module, faces: np.ndarray, targets: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(maps, probabilities) for (N, 48, 48) uint8 faces: each map the Grad-CAM of its target
    class (default: the predicted one), upsampled to 48x48 and scaled to a maximum of 1."""
    from captum.attr import LayerAttribution, LayerGradCam

    model = explainable(model)
    x = torch.from_numpy(np.ascontiguousarray(faces)).float().div(255).unsqueeze(1)
    with torch.no_grad():
        probabilities = torch.softmax(model(x), 1)
    chosen = probabilities.argmax(1) if targets is None else torch.as_tensor(targets)
    cam = LayerGradCam(model, last_conv(model))
    maps = cam.attribute(x, target=chosen.long(), relu_attributions=True)
    maps = LayerAttribution.interpolate(maps.detach(), (IMAGE_SIZE, IMAGE_SIZE), "bilinear")
    maps = maps[:, 0].clamp(min=0)
    peak = maps.flatten(1).amax(1).clamp(min=1e-12)[:, None, None]
    return (maps / peak).numpy().astype(np.float32), probabilities.numpy()


def checkpoint_saliency(checkpoint: dict, method: str = "gradcam") -> Saliency:
    """A ``(faces, targets) -> (maps, probabilities)`` function for a loaded checkpoint:
    Grad-CAM, or occlusion through the network (as exported models are explained)."""
    model = model_from_checkpoint(checkpoint)
    if method == "gradcam":
        return lambda faces, targets=None: gradcam_maps(model, faces, targets)

    def predict(faces: np.ndarray) -> np.ndarray:
        logits = predict_logits(model, torch.from_numpy(faces).unsqueeze(1))
        return torch.softmax(logits, 1).numpy()

    return lambda faces, targets=None: occlusion_maps(predict, faces, targets)
