"""Figures: sample grids, learning curves, confusion matrices and model comparisons.

The sample grid is drawn with OpenCV so ``fercnn info`` works on the base install; the training
figures use matplotlib (the ``train`` extra), imported inside each function with the file-only
Agg backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import FercnnError
from .labels import EMOTIONS


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise FercnnError("plots need matplotlib: pip install 'fercnn[train]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    _pyplot().close(fig)


def sample_grid(images: np.ndarray, labels: np.ndarray, path: str | Path, per_class: int = 8,
                seed: int = 0, zoom: int = 2) -> None:
    """A row of random faces per class, each row headed by the class name and its count."""
    import cv2

    rng = np.random.default_rng(seed)
    side, gap, label_width = images.shape[1] * zoom, 4, 150
    rows = []
    for index, emotion in enumerate(EMOTIONS):
        row = np.full((side, label_width + per_class * (side + gap)), 255, np.uint8)
        members = np.flatnonzero(labels == index)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for col, i in enumerate(chosen):
            x = label_width + col * (side + gap)
            row[:, x:x + side] = cv2.resize(images[i], (side, side),
                                            interpolation=cv2.INTER_NEAREST)
        cv2.putText(row, emotion, (6, side // 2 - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1,
                    cv2.LINE_AA)
        cv2.putText(row, f"({len(members)})", (6, side // 2 + 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, 90, 1, cv2.LINE_AA)
        rows += [row, np.full((gap, row.shape[1]), 255, np.uint8)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), np.vstack(rows[:-1])):
        raise FercnnError(f"{path}: cannot write image")
    tmp.replace(path)


def learning_curves(history: list[dict], path: str | Path, title: str = "") -> None:
    """Accuracy and loss, train against validation, side by side (the notebook's figure)."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in history]
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((acc_ax, "acc", "accuracy"), (loss_ax, "loss", "loss")):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], "o-", label="train")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], "o-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(f"{title} {label}".strip())
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def confusion_matrix(confusion: np.ndarray, path: str | Path, title: str = "",
                     columns: list[str] | None = None) -> None:
    """Row-normalised confusion matrix (each true class sums to 1); ``columns`` names the
    predictions when they are more than the classes (photos: "no face")."""
    columns = columns or list(EMOTIONS)
    plt = _pyplot()
    totals = confusion.sum(1, keepdims=True)
    normalised = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(columns)), columns, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(EMOTIONS)):
        for j in range(len(columns)):
            ax.text(j, i, f"{normalised[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if normalised[i, j] > 0.5 else "black")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save(fig, path)


def compare_curves(histories: dict[str, list[dict]], path: str | Path) -> None:
    """Every model's validation accuracy and loss on one pair of axes."""
    plt = _pyplot()
    fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, history in histories.items():
        epochs = [r["epoch"] for r in history]
        acc_ax.plot(epochs, [r["val_acc"] for r in history], "o-", label=name)
        loss_ax.plot(epochs, [r["val_loss"] for r in history], "o-", label=name)
    for ax, label in ((acc_ax, "validation accuracy"), (loss_ax, "validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, path)


def saliency_grid(faces: np.ndarray, maps: np.ndarray, captions: list[str], path: str | Path,
                  title: str = "", columns: int = 4, zoom: int = 4) -> None:
    """Faces with their saliency maps laid over them, a caption under each, in a grid (drawn
    with OpenCV, as the sample grid)."""
    import cv2

    from .recognition.heatmaps import blend

    side, caption_height, gap = faces.shape[1] * zoom, 22, 6
    cells = []
    for face, saliency, caption in zip(faces, maps, captions, strict=True):
        size = (side, side)
        big = blend(cv2.resize(face, size, interpolation=cv2.INTER_NEAREST),
                    cv2.resize(saliency, size, interpolation=cv2.INTER_LINEAR))
        label = np.full((caption_height, side, 3), 255, np.uint8)
        cv2.putText(label, caption, (2, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1,
                    cv2.LINE_AA)
        cells.append(np.vstack([big, label]))
    blank = np.full_like(cells[0], 255)
    cells += [blank] * (-len(cells) % columns)
    spacer = np.full((cells[0].shape[0], gap, 3), 255, np.uint8)
    rows = [np.hstack([c for cell in cells[r:r + columns] for c in (cell, spacer)][:-1])
            for r in range(0, len(cells), columns)]
    grid = np.vstack([np.vstack([row, np.full((gap, row.shape[1], 3), 255, np.uint8)])
                      for row in rows])
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    cv2.putText(header, title, (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    if not cv2.imwrite(str(tmp), np.vstack([header, grid])):
        raise FercnnError(f"{path}: cannot write image")
    tmp.replace(path)
