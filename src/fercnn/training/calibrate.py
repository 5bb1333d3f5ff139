"""Calibrating an exported model's probabilities on PublicTest, for the prior shift.

``--prior photos`` (recognition/priors.py) divides a model's probabilities by its training mix
and multiplies them by the photos' one. That is exact only for calibrated probabilities, and
label smoothing and averaged views leave the models here under-confident (on PublicTest their
log-probabilities want scaling by about 1.2). Bias-corrected temperature scaling (a scale for
the log-probabilities and a bias per class, fitted by likelihood; Alexandari, Kundaje and
Shrikumar, ICML 2020) is the calibration that paper finds hard to beat for label-shift
correction. It is fitted on PublicTest, whose mix is Training's, and stored in the model file
(metadata ``calibration``); nothing is fitted on photos or PrivateTest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import FercnnError
from ..metrics import negative_log_likelihood

SPLIT = "PublicTest"
VIEWS = "mirror"  # Recognizer's default: the views every face of a photo is read with
# a little L2 on the biases: a class absent from a small PublicTest (synthetic data) would
# otherwise drift to minus infinity; on FER-2013 it moves the default's biases by under 0.005
# and its scale by 2e-4
BIAS_PENALTY = 1e-4


def fit_calibration(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """The scale and per-class biases that make ``softmax(scale * log p + bias)`` most likely
    for ``labels`` (L-BFGS on the mean negative log-likelihood)."""
    import torch

    log_p = torch.from_numpy(np.log(np.maximum(probabilities, 1e-12))).double()
    target = torch.from_numpy(np.asarray(labels)).long()
    log_scale = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(log_p.shape[1], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_scale, bias], max_iter=200, tolerance_grad=1e-9,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(log_p * log_scale.exp() + bias, target) \
            + BIAS_PENALTY * (bias ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_scale.detach().exp()), bias.detach().numpy().copy()


def calibration_entry(model: str | Path, dataset) -> dict:
    """The metadata entry for ``model`` (a file or bundled name) fitted on ``dataset``'s
    PublicTest faces, read as recognition reads faces (with their mirror image, no photo
    reader)."""
    from ..recognition.evaluate import onnx_probabilities
    from ..recognition.priors import Calibration

    split = dataset.split(SPLIT)
    if len(split) == 0:
        raise FercnnError(f"calibration needs {SPLIT} faces; the data has none")
    probabilities, read = onnx_probabilities(model, split.images, tta=VIEWS)
    scale, bias = fit_calibration(probabilities, split.labels)
    classes = read["classes"]
    entry = {"method": "bias-corrected temperature scaling", "split": SPLIT,
             "faces": len(split), "views": VIEWS, "scale": round(scale, 5),
             "bias": {c: round(float(b), 5) for c, b in zip(classes, bias, strict=True)}}
    calibrated = Calibration.from_metadata(entry, classes).apply(probabilities)
    entry["nll"] = [round(negative_log_likelihood(p, split.labels), 5)
                    for p in (probabilities, calibrated)]
    return entry
