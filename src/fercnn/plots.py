"""Figures: sample grids, learning curves, confusion matrices and model comparisons.

matplotlib is imported inside each function (with the file-only Agg backend), so modules that
import this one stay light and work without a display.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .labels import EMOTIONS


def _pyplot():
    import matplotlib

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
                seed: int = 0) -> None:
    """A row of random faces per class, as the notebook showed."""
    plt = _pyplot()
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(EMOTIONS), per_class,
                             figsize=(per_class * 1.1, len(EMOTIONS) * 1.2), squeeze=False)
    for row, emotion in enumerate(EMOTIONS):
        members = np.flatnonzero(labels == row)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for col, ax in enumerate(axes[row]):
            ax.axis("off")
            if col < len(chosen):
                ax.imshow(images[chosen[col]], cmap="gray", vmin=0, vmax=255)
        axes[row][0].set_title(f"{emotion} ({len(members)})", loc="left", fontsize=9)
    _save(fig, path)


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


def confusion_matrix(confusion: np.ndarray, path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix (each true class sums to 1)."""
    plt = _pyplot()
    totals = confusion.sum(1, keepdims=True)
    normalised = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
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
