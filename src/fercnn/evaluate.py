"""Evaluate trained runs, checkpoints or exported ONNX models on one split, alone or as an
ensemble (probabilities averaged), with optional test-time augmentation.

torch is imported only for checkpoints: an ONNX model is evaluated with onnxruntime alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import FercnnError
from .metrics import classification_metrics, write_report
from .recognition.bundled import is_onnx


def read_checkpoints(models: list[str], runs: str | Path | None = None) -> dict[str, dict]:
    """The checkpoint of each model that is a training run (under ``runs`` if given);
    exported models have none, and without a training run torch is never imported."""
    if all(is_onnx(m) for m in models):
        return {}
    from .training.evaluate import read_checkpoints as read

    return read(models, runs)


def first_run_config(checkpoints: dict[str, dict]) -> dict:
    """The saved config of the first training run, whose data and FER+ labels an evaluation
    follows by default; empty when every model is an exported one (they carry no config)."""
    return next(iter(checkpoints.values()))["config"] if checkpoints else {}


def model_probabilities(model: str, images: np.ndarray, tta: bool | str = False,
                        checkpoint: dict | None = None) -> tuple[np.ndarray, dict]:
    """Probabilities of a training run through torch when its ``checkpoint`` is given, else of
    the exported ``model`` through onnxruntime."""
    if checkpoint is not None:
        from .training.evaluate import checkpoint_probabilities

        return checkpoint_probabilities(checkpoint, images, tta)
    from .recognition.evaluate import onnx_probabilities

    return onnx_probabilities(model, images, tta)


def _data_for(saved: dict, data: str | None) -> str:
    """The data to evaluate on: given, else $FERCNN_DATA, else the first run's own data."""
    data = data or os.environ.get("FERCNN_DATA") or saved.get("data")
    if not data:
        raise FercnnError("no data given: pass --data or set FERCNN_DATA")
    return data


def evaluate(models: list[str | Path], data: str | None = None, split: str = "PublicTest",
             tta: bool | str = False, out: str | Path | None = None,
             ferplus: str | None = None, ferplus_rule: str = "plurality") -> dict:
    """Metrics of one model or the average of several on ``split``; with ``out``, the metrics
    JSON and a normalised confusion matrix are written there.

    ``ferplus`` (default: the FER+ file a run was trained with) scores against FER+ labels
    under ``ferplus_rule`` instead of the original ones. Under the authors' ``majority`` rule
    the contempt faces are left out of the metrics (none of the seven classes is right for
    them); ``accuracy_with_contempt`` counts them as errors, as the authors' 8-class test
    set would.
    """
    from .data import load_dataset
    from .data.ferplus import CONTEMPT, load_ferplus
    from .labels import SPLITS
    from .tta import tta_mode

    models, tta = [str(m) for m in models], tta_mode(tta)
    checkpoints = read_checkpoints(models)
    saved = first_run_config(checkpoints)
    ferplus = ferplus or saved.get("ferplus")
    if ferplus_rule != "plurality" and not ferplus:
        raise FercnnError(f"the FER+ {ferplus_rule} rule needs FER+ labels: pass --ferplus")
    votes = load_ferplus(ferplus) if ferplus else None  # read once: relabel, count contempt
    source = _data_for(saved, data)
    part = load_dataset(source, ferplus=votes, ferplus_rule=ferplus_rule).split(split)
    if len(part) == 0:
        raise FercnnError(f"{source}: no {split} images to evaluate on")
    probabilities, members = [], []
    for model in models:
        p, info = model_probabilities(model, part.images, tta, checkpoints.get(model))
        probabilities.append(p)
        members.append({"path": model, **info})
    labels = "FER+ plurality" if ferplus_rule == "plurality" else "FER+ authors' majority"
    result = {"models": members, "split": split, "tta": tta,
              "labels": labels if ferplus else "FER-2013",
              **classification_metrics(np.mean(probabilities, axis=0), part.labels,
                                       ~part.in_training)}
    if votes is not None and ferplus_rule == "majority":
        contempt = int(((votes.authors_majority == CONTEMPT)
                        & (votes.usage == SPLITS.index(split))).sum())
        result["contempt_images"] = contempt
        result["accuracy_with_contempt"] = \
            result["accuracy"] * result["images"] / (result["images"] + contempt)
    if len(members) == 1:
        result.update({k: v for k, v in members[0].items() if k in ("model", "epoch")})
    if out is not None:
        title = members[0].get("name", Path(models[0]).name) if len(models) == 1 \
            else f"ensemble of {len(models)}"
        write_report(result, out, title + (f" + {tta} TTA" if tta != "none" else ""))
        if len(models) == 1:  # an ensemble has no one network to explain
            from .explain import write_mistakes

            write_mistakes(models[0], checkpoints.get(models[0]), part.images, part.labels,
                           probabilities[0], Path(out) / f"mistakes-{split}.png")
    return result
