"""The in-memory dataset every reader produces: uint8 images, labels and split codes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS, SPLITS


@dataclass
class FerDataset:
    """All images of one source, kept as compact arrays so training can batch by index.

    ``usage`` holds an index into ``SPLITS`` per image. ``soft_labels`` (N x 7 vote
    distribution) is set only when FER+ labels were applied.
    """

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, index into EMOTIONS
    usage: np.ndarray  # (N,) uint8, index into SPLITS
    source: str
    soft_labels: np.ndarray | None = None
    in_training: np.ndarray = field(init=False)  # (N,) bool: image also appears in Training

    def __post_init__(self) -> None:
        self.in_training = duplicates_of_training(self.images, self.usage)

    def __len__(self) -> int:
        return len(self.labels)

    def split_mask(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise FercnnError(f"unknown split {name!r}: choose one of {', '.join(SPLITS)}")
        return self.usage == SPLITS.index(name)

    def split(self, name: str) -> FerSplit:
        mask = self.split_mask(name)
        soft = None if self.soft_labels is None else self.soft_labels[mask]
        return FerSplit(name, self.images[mask], self.labels[mask], self.in_training[mask], soft)

    def summary(self) -> dict:
        """Per split: total, count of each class and how many images also appear in Training."""
        splits = {}
        for name in SPLITS:
            part = self.split(name)
            counts = np.bincount(part.labels, minlength=len(EMOTIONS))
            splits[name] = {
                "total": int(len(part)),
                "classes": {e: int(c) for e, c in zip(EMOTIONS, counts, strict=True)},
                "in_training": int(part.in_training.sum()) if name != "Training" else None,
            }
        distinct = len({img.tobytes() for img in self.images})
        return {"source": self.source, "total": len(self), "distinct_images": distinct,
                "splits": splits}


@dataclass
class FerSplit:
    """One split's arrays; ``in_training`` marks test images that also appear in Training."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    in_training: np.ndarray
    soft_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def duplicates_of_training(images: np.ndarray, usage: np.ndarray) -> np.ndarray:
    """Flag non-Training images that are pixel-identical to some Training image.

    Such rows inflate test accuracy (the model has seen them), so reports give a "clean"
    accuracy without them.
    """
    training = usage == SPLITS.index("Training")
    seen = {img.tobytes() for img in images[training]}
    flags = np.zeros(len(images), dtype=bool)
    for i in np.flatnonzero(~training):
        flags[i] = images[i].tobytes() in seen
    return flags
