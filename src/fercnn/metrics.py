"""Classification metrics from probabilities, and their report files (numpy only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .labels import EMOTIONS


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
    result = {
        "images": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "loss": negative_log_likelihood(probabilities, labels),
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


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The mean cross-entropy of ``labels`` under ``probabilities`` (a split's loss)."""
    picked = probabilities[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.clip(picked, 1e-12, None)).mean())


def write_report(result: dict, out: str | Path, title: str) -> None:
    """``metrics-<split>.json`` and a normalised ``confusion-<split>.png`` in ``out``."""
    from .plots import confusion_matrix

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split = result["split"]
    (out / f"metrics-{split}.json").write_text(json.dumps(result, indent=2))
    confusion_matrix(np.array(result["confusion"]), out / f"confusion-{split}.png",
                     title=f"{title} on {split}: accuracy {result['accuracy']:.1%}")


NO_FACE = -1  # the prediction of a photo whose face was not found


def photo_metrics(predicted: np.ndarray, labels: np.ndarray) -> dict:
    """Metrics of labelled photos through the whole recognition path: a photo whose face was
    not found (``NO_FACE``) counts as wrong. Macro recall (the mean recall over the classes
    present) weighs a rare class as much as a common one, where accuracy follows the mix.
    The confusion matrix has an eighth column, "no face"."""
    k = len(EMOTIONS)
    columns = np.where(predicted == NO_FACE, k, predicted)
    confusion = np.bincount(labels * (k + 1) + columns, minlength=k * (k + 1)).reshape(k, k + 1)
    support = confusion.sum(1)
    recall = np.divide(np.diag(confusion[:, :k]).astype(float), support, out=np.zeros(k),
                       where=support > 0)
    return {
        "images": int(len(labels)),
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "macro_recall": float(recall[support > 0].mean()) if support.any() else 0.0,
        "no_face": float((predicted == NO_FACE).mean()) if len(labels) else 0.0,
        "per_class": {e: {"recall": float(r), "support": int(s)}
                      for e, r, s in zip(EMOTIONS, recall, support, strict=True)},
        "confusion": confusion.tolist(),
        "confusion_columns": [*EMOTIONS, "no face"],
    }
