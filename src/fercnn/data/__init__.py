"""Readers for FER-2013 in its two common shapes, FER+ labels, and the shared dataset type."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import FercnnError
from .dataset import FerDataset, FerSplit
from .fer2013 import load_fer2013_csv
from .ferplus import FerPlusLabels, apply_ferplus, load_ferplus
from .folders import export_folders, is_folder_dataset, load_folders

__all__ = ["FerDataset", "FerSplit", "load_dataset", "load_ferplus", "apply_ferplus",
           "export_folders", "resolve_data_path"]


def resolve_data_path(path: str | Path | None) -> Path:
    """The data argument, else ``FERCNN_DATA``; a clear error when neither is given."""
    if path is None or str(path) == "":
        path = os.environ.get("FERCNN_DATA")
        if not path:
            raise FercnnError("no data given: pass a FER-2013 CSV or image folder, "
                              "or set FERCNN_DATA")
    return Path(path)


def load_dataset(path: str | Path | None = None, val_fraction: float = 0.1, seed: int = 0,
                 ferplus: str | Path | FerPlusLabels | None = None,
                 ferplus_rule: str = "plurality") -> FerDataset:
    """Load FER-2013 from a CSV (plain/.gz/.xz) or a ``train/``+``test/`` image folder.

    ``ferplus`` names a ``fer2013new.csv`` (or holds its votes, already read) whose labels,
    under ``ferplus_rule`` (see ``fercnn.data.ferplus``), replace the originals.
    """
    path = resolve_data_path(path)
    if path.is_dir():
        if not is_folder_dataset(path):
            raise FercnnError(f"{path}: expected a FER-2013 CSV or a folder with train/ and "
                              "test/ class folders")
        dataset = load_folders(path, val_fraction=val_fraction, seed=seed)
    elif path.exists():
        dataset = load_fer2013_csv(path)
    else:
        raise FercnnError(f"{path}: no such file or folder")
    if ferplus is not None:
        votes = ferplus if isinstance(ferplus, FerPlusLabels) else load_ferplus(ferplus)
        dataset = apply_ferplus(dataset, votes, ferplus_rule)
    return dataset
