"""FER+ relabelling (``fer2013new.csv``): ten crowd votes per FER-2013 image.

Rows are joined to ``fer2013.csv`` by position, never by ``Image name`` (the names drift from
row 60 on). Of the ten vote columns, the seven FER-2013 emotions are kept; ``contempt`` is not
one of them, so its votes are dropped from the distribution, and rows whose most-voted column
is contempt, unknown or not-a-face (NF) get no label.

Two rules name an image's label. ``plurality`` (the default, used for training): the most-voted
column, whatever its share. ``majority``: the FER+ authors' test protocol (the ``majority``
mode of Microsoft's FERPlus code, under which their published accuracies were measured): votes
cast by a single tagger are dropped as outliers, and an image counts only where one column then
holds more than half of the remaining votes. It leaves out the ambiguous faces, about one in
nine.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS, SPLITS
from .dataset import FerDataset

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")
# FER+ column -> FER-2013 class index (None: not one of the seven)
_TO_EMOTION = {"neutral": "neutral", "happiness": "happy", "surprise": "surprise",
               "sadness": "sad", "anger": "angry", "disgust": "disgust", "fear": "fear"}
COLUMN_CLASS = [EMOTIONS.index(_TO_EMOTION[c]) if c in _TO_EMOTION else None
                for c in VOTE_COLUMNS]
RULES = ("plurality", "majority")
CONTEMPT = len(EMOTIONS)  # a label no seven-way model predicts: scored, it always counts wrong


@dataclass
class FerPlusLabels:
    votes: np.ndarray  # (N, 10) int, in VOTE_COLUMNS order
    usage: np.ndarray  # (N,) uint8, index into SPLITS
    source: str = "fer2013new.csv"

    @property
    def plurality(self) -> np.ndarray:
        """(N,) class index of the most-voted column (first on ties), -1 if not an emotion."""
        top = np.argmax(self.votes, axis=1)
        lookup = np.array([-1 if c is None else c for c in COLUMN_CLASS])
        return lookup[top]

    @property
    def authors_majority(self) -> np.ndarray:
        """(N,) class index under the FER+ authors' ``majority`` rule: -1 where no column
        holds more than half of the votes cast by two or more taggers, or where that column
        is unknown or NF; ``CONTEMPT`` where it is contempt."""
        votes = np.where(self.votes > 1, self.votes, 0)
        top = np.argmax(votes, axis=1)
        clear = 2 * votes.max(axis=1) > votes.sum(axis=1)
        lookup = np.array([CONTEMPT if name == "contempt" else -1 if c is None else c
                           for name, c in zip(VOTE_COLUMNS, COLUMN_CLASS, strict=True)])
        return np.where(clear, lookup[top], -1)

    def labels(self, rule: str = "plurality") -> np.ndarray:
        """(N,) labels under ``rule`` (see the module's docstring); negative: not scored."""
        if rule not in RULES:
            raise FercnnError(f"unknown FER+ rule {rule!r}: choose one of {', '.join(RULES)}")
        return self.plurality if rule == "plurality" else self.authors_majority

    @property
    def distribution(self) -> np.ndarray:
        """(N, 7) float32 vote shares over the seven emotions (zeros where none voted)."""
        dist = np.zeros((len(self.votes), len(EMOTIONS)), dtype=np.float32)
        for column, cls in enumerate(COLUMN_CLASS):
            if cls is not None:
                dist[:, cls] += self.votes[:, column]
        totals = dist.sum(axis=1, keepdims=True)
        return np.divide(dist, totals, out=np.zeros_like(dist), where=totals > 0)


def load_ferplus(path: str | Path) -> FerPlusLabels:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FercnnError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FercnnError(f"{path}: cannot read ({e})") from None
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    expected = ["Usage", "Image name", *VOTE_COLUMNS]
    if header != expected:
        raise FercnnError(f"{path}: line 1: expected header {','.join(expected)!r}")
    votes, usage = [], []
    for number, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(expected) or row[0] not in SPLITS:
            raise FercnnError(f"{path}: line {number}: expected Usage, Image name and 10 votes")
        try:
            votes.append([int(v) for v in row[2:]])
        except ValueError:
            raise FercnnError(f"{path}: line {number}: votes must be integers") from None
        usage.append(SPLITS.index(row[0]))
    return FerPlusLabels(np.array(votes, dtype=np.int64), np.array(usage, dtype=np.uint8),
                         str(path))


def check_ferplus_matches(dataset: FerDataset, ferplus: FerPlusLabels) -> None:
    """Refuse a FER+ file that cannot join ``dataset`` row by row (wrong length or splits)."""
    if len(ferplus.votes) != len(dataset):
        raise FercnnError(f"{ferplus.source}: {len(ferplus.votes)} rows, but "
                          f"{dataset.source} has {len(dataset)}; FER+ joins by row position")
    if not np.array_equal(ferplus.usage, dataset.usage):
        row = int(np.argmax(ferplus.usage != dataset.usage))
        raise FercnnError(f"{ferplus.source}: line {row + 2}: Usage differs from "
                          f"{dataset.source}; FER+ joins by row position")


def apply_ferplus(dataset: FerDataset, ferplus: FerPlusLabels,
                  rule: str = "plurality") -> FerDataset:
    """A copy of ``dataset`` relabelled by FER+ votes under ``rule``, keeping only the rows
    whose label is one of the seven emotions (so the authors' contempt faces are left out)."""
    check_ferplus_matches(dataset, ferplus)
    labels = ferplus.labels(rule)
    keep = (labels >= 0) & (labels < CONTEMPT)
    return FerDataset(dataset.images[keep], labels[keep].astype(np.int64),
                      dataset.usage[keep], source=f"{dataset.source} + FER+",
                      soft_labels=ferplus.distribution[keep])
