"""Evaluation on the recognition side: exported (ONNX) models scored through onnxruntime, no
torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .recognizer import Recognizer


def onnx_probabilities(model: str | Path, images: np.ndarray, tta: bool = False
                       ) -> tuple[np.ndarray, dict]:
    """Probabilities of an exported model (``default``: the embedded one), and its metadata."""
    recognizer = Recognizer(model, tta=tta)
    probabilities = np.concatenate([recognizer.predict_batch(images[i:i + 256])
                                    for i in range(0, len(images), 256)])
    return probabilities, {"model": recognizer.metadata.get("model")}
