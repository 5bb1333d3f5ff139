"""An exported vgg-s ONNX model back into a training checkpoint, so it can be fine-tuned
(``init:`` in a config) after its run folder is gone.

Export folds each batch norm into the layer before it (a weight and a bias). Loaded with
identity batch norms the network computes the same function in eval mode, but training mode
normalises with batch statistics and would change it at once. So the batch norms are unfolded
from data: each one's scale and shift are set to the standard deviation and mean of its input
on Training images (plus the folded bias), and its running statistics to the same, so the
network computes the exported function in both modes at the start of fine-tuning.

    python scripts/onnx_to_checkpoint.py results/cpu-budget-ema/model-fp32.onnx \
        runs/default-init/best.pt \
        --data ../shared/data/fer2013.csv.xz

checks that the checkpoint's probabilities equal the ONNX model's on PublicTest images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from fercnn import load_dataset
from fercnn.models import create_model
from fercnn.recognition import Recognizer
from fercnn.training.checkpoint import save_atomic

MODEL = "vgg-s"


def folded_weights(path: Path) -> dict[str, np.ndarray]:
    """The ONNX initialisers named as the torch module's parameters ("features.0.weight",
    "features.0.weight_bias" for a folded bias), the ensemble prefix dropped."""
    proto = onnx.load(str(path))
    return {i.name.removeprefix("models.0."): numpy_helper.to_array(i)
            for i in proto.graph.initializer}


def layers_with_norms(model: nn.Module) -> list[tuple[str, nn.Module, nn.Module]]:
    """(name, conv or linear, the batch norm after it) for every folded pair."""
    named = list(model.named_modules())
    pairs = []
    for (name, layer), (_, nxt) in zip(named, named[1:], strict=False):
        if isinstance(layer, (nn.Conv2d, nn.Linear)) and isinstance(
                nxt, (nn.BatchNorm2d, nn.BatchNorm1d)):
            pairs.append((name, layer, nxt))
    return pairs


def layer_output(model: nn.Module, layer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """What ``layer`` computes inside ``model`` for ``images``."""
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _i, output: seen.append(output))
    model(images)
    hook.remove()
    return seen[0]


@torch.no_grad()
def unfold(model: nn.Module, weights: dict[str, np.ndarray], images: torch.Tensor) -> None:
    """Load the folded weights, then set every batch norm from its input's statistics."""
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()
                           if not k.endswith("_bias")}, strict=False)
    pairs = layers_with_norms(model)
    for _, _, norm in pairs:  # identity norms: the exported function, layer by layer
        norm.weight.fill_(1.0)
        norm.bias.zero_()
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0 - norm.eps)
    model.eval()
    for name, layer, norm in pairs:
        bias = torch.from_numpy(weights[f"{name}.weight_bias"].copy())
        out = layer_output(model, layer, images).transpose(0, 1).reshape(len(bias), -1)
        mean, var = out.mean(1), out.var(1, unbiased=False)
        std = (var + norm.eps).sqrt()
        norm.weight.copy_(std)
        norm.bias.copy_(mean + bias)
        norm.running_mean.copy_(mean)
        norm.running_var.copy_(var)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("onnx", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=2048)
    args = parser.parse_args()
    dataset = load_dataset(args.data)
    train = dataset.split("Training").images[:args.images]
    model = create_model(MODEL)
    unfold(model, folded_weights(args.onnx),
           torch.from_numpy(train).unsqueeze(1).float() / 255)
    check = dataset.split("PublicTest").images[:1024]
    with torch.no_grad():
        mine = torch.softmax(model.eval()(torch.from_numpy(check).unsqueeze(1).float() / 255),
                             1).numpy()
    theirs = Recognizer(args.onnx, tta="none").predict_batch(check)
    gap = float(np.abs(mine - theirs).max())
    agree = float((mine.argmax(1) == theirs.argmax(1)).mean())
    print(f"checkpoint against {args.onnx} on {len(check)} PublicTest images: max probability "
          f"difference {gap:.2e}, same class {agree:.2%}")
    if gap > 1e-3:
        raise SystemExit("the checkpoint does not compute the exported function")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"model_name": MODEL, "model": model.state_dict(), "epoch": 0,
                 "config": {"model": MODEL}, "source": str(args.onnx)}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
