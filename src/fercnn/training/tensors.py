"""The training data as tensors on the training device: uint8 images, labels and, where the
config asks, soft targets from FER+ votes. Read once; a batch is an index into them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import FercnnError
from ..labels import EMOTIONS
from .config import TrainConfig

if TYPE_CHECKING:
    from ..data import FerDataset


@dataclass
class TrainingSet:
    """The training tensors on the device: uint8 images, class labels, optional vote shares."""

    images: torch.Tensor  # (N, 1, 48, 48) uint8
    labels: torch.Tensor  # (N,) int64
    soft: torch.Tensor | None = None  # (N, 7) float training targets, when not the labels
    taught: torch.Tensor | None = None  # (N, 7) the teachers' cached targets (distill_cached)

    def __len__(self) -> int:
        return len(self.labels)


def crowd_targets(dataset: FerDataset, votes_path: str, weight: float) -> np.ndarray:
    """(N_train, 7) targets: the FER-2013 label blended with the FER+ crowd's vote shares.

    The crowd's ten votes say how ambiguous a face is and which emotions it is confused with,
    which one noisy label cannot. Images without emotion votes keep their one-hot label.
    """
    from ..data import load_ferplus
    from ..data.ferplus import check_ferplus_matches

    votes = load_ferplus(votes_path)
    check_ferplus_matches(dataset, votes)
    train = dataset.split_mask("Training")
    labels = np.eye(len(EMOTIONS), dtype=np.float32)[dataset.labels[train]]
    shares = votes.distribution[train]
    voted = shares.sum(axis=1, keepdims=True) > 0
    return np.where(voted, (1 - weight) * labels + weight * shares, labels)


def load_tensors(config: TrainConfig, device: torch.device
                 ) -> tuple[TrainingSet, torch.Tensor, torch.Tensor]:
    """The config's training set (its first ``limit`` images), and the PublicTest images and
    labels that choose the best epoch, all on ``device``."""
    from ..data import load_dataset

    dataset = load_dataset(config.data, val_fraction=config.val_fraction,
                           ferplus=config.ferplus)
    if config.soft_labels and dataset.soft_labels is None:
        raise FercnnError("soft_labels needs FER+ votes: set ferplus to fer2013new.csv")
    train_split, val_split = dataset.split("Training"), dataset.split("PublicTest")
    limit = config.limit or len(train_split)
    soft = train_split.soft_labels if config.soft_labels else None
    if config.crowd_votes:
        soft = crowd_targets(dataset, config.crowd_votes, config.crowd_weight)
    train_set = TrainingSet(
        torch.from_numpy(train_split.images[:limit]).unsqueeze(1).to(device),
        torch.from_numpy(train_split.labels[:limit]).to(device),
        None if soft is None else torch.from_numpy(soft[:limit]).to(device))
    x_val = torch.from_numpy(val_split.images).unsqueeze(1).to(device)
    y_val = torch.from_numpy(val_split.labels).to(device)
    if len(train_set) == 0 or len(y_val) == 0:
        raise FercnnError("the data has no Training or no PublicTest (validation) images")
    return train_set, x_val, y_val
