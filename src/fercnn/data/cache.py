"""A content-keyed cache of arrays: parsed datasets, so the 300 MB CSV is parsed once per machine,
and the teachers' targets of cached distillation (``training.distill.stored_targets``)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

CACHE_VERSION = 1


def cache_dir() -> Path:
    """``FERCNN_CACHE`` if set, else the user's cache folder (XDG on Linux)."""
    if os.environ.get("FERCNN_CACHE"):
        return Path(os.environ["FERCNN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fercnn"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks (about 0.2 s for the 74 MB archive)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def cache_path(key: str) -> Path:
    return cache_dir() / f"v{CACHE_VERSION}-{key}.npz"


def load_arrays(key: str, required: tuple[str, ...] = ("images", "labels", "usage")
                ) -> dict[str, np.ndarray] | None:
    """The cached arrays for ``key``, or None when absent or damaged (then re-parse).

    Any failure to read counts as damage: a truncated zip, an empty file, a missing array.
    """
    path = cache_path(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except Exception:
        return None
    return arrays if all(name in arrays for name in required) else None


def save_arrays(key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a temporary file in the same folder, then a rename.

    A failure to write (read-only home, full disk) only costs speed, so it is not fatal.
    """
    path = cache_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass
