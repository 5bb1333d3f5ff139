"""The original ``fer2013.csv`` (``emotion,pixels,Usage``), plain, .gz or .xz.

Every row is validated; the 82 million pixel values are parsed with vectorised numpy on the
raw bytes (no per-value Python), then cached as uint8 arrays keyed by the file's content.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import numpy as np

from ..errors import FercnnError
from ..labels import EMOTIONS, IMAGE_SIZE, SPLITS
from . import cache
from .dataset import FerDataset

HEADER = b"emotion,pixels,Usage"
PIXELS = IMAGE_SIZE * IMAGE_SIZE
LABEL_FIELDS = {str(i).encode() for i in range(len(EMOTIONS))}
USAGE_CODES = {name.encode(): i for i, name in enumerate(SPLITS)}
_OPENERS = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}


def read_bytes(path: Path) -> bytes:
    opener = _OPENERS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FercnnError(f"{path}: no such file") from None
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise FercnnError(f"{path}: cannot read ({e})") from None


def load_fer2013_csv(path: str | Path, use_cache: bool = True) -> FerDataset:
    """Parse (or fetch from the cache) a FER-2013 CSV into a :class:`FerDataset`."""
    path = Path(path)
    if not path.is_file():
        raise FercnnError(f"{path}: no such file")
    key = "csv-" + cache.file_digest(path)
    arrays = cache.load_arrays(key) if use_cache else None
    if arrays is None:
        arrays = parse_fer2013(read_bytes(path), str(path))
        if use_cache:
            cache.save_arrays(key, arrays)
    return FerDataset(arrays["images"], arrays["labels"].astype(np.int64), arrays["usage"],
                      source=str(path))


def parse_fer2013(data: bytes, name: str = "fer2013.csv") -> dict[str, np.ndarray]:
    """Validate and parse the CSV bytes; errors name the file and the 1-based line number."""
    data = data.replace(b"\r\n", b"\n")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines[0].strip() != HEADER:
        found = lines[0][:60].decode("utf-8", "replace")
        raise FercnnError(f"{name}: line 1: expected header {HEADER.decode()!r}, found {found!r}")
    line_numbers, labels, usage, pixel_fields = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split(b",")
        if len(fields) != 3:
            raise FercnnError(f"{name}: line {number}: expected 3 fields "
                              f"(emotion,pixels,Usage), found {len(fields)}")
        emotion, pixels, split = fields
        if emotion.strip() not in LABEL_FIELDS:
            raise FercnnError(f"{name}: line {number}: emotion must be 0-6, "
                              f"found {emotion[:20].decode('utf-8', 'replace')!r}")
        code = USAGE_CODES.get(split.strip())
        if code is None:
            raise FercnnError(f"{name}: line {number}: Usage must be one of {', '.join(SPLITS)}, "
                              f"found {split[:20].decode('utf-8', 'replace')!r}")
        line_numbers.append(number)
        labels.append(int(emotion))
        usage.append(code)
        pixel_fields.append(pixels)
    if not labels:
        raise FercnnError(f"{name}: no data rows after the header")
    images = _parse_pixels(pixel_fields, line_numbers, name)
    return {"images": images, "labels": np.array(labels, dtype=np.uint8),
            "usage": np.array(usage, dtype=np.uint8)}


def _parse_pixels(fields: list[bytes], line_numbers: list[int], name: str) -> np.ndarray:
    """Turn space-separated decimal fields into an (N, 48, 48) uint8 array, checking each row."""
    blob = np.frombuffer(b"\n".join(fields), dtype=np.uint8)
    row_ends = np.cumsum([len(f) + 1 for f in fields]) - 1  # index of each row's "\n" slot
    row_starts = np.concatenate([[0], row_ends[:-1] + 1])

    def row_of(position: int) -> int:
        return int(np.searchsorted(row_ends, position))

    is_digit = (blob >= ord("0")) & (blob <= ord("9"))
    bad = ~is_digit & (blob != ord(" ")) & (blob != ord("\n"))
    if bad.any():
        at = int(np.argmax(bad))
        row = row_of(at)
        raise FercnnError(f"{name}: line {line_numbers[row]}: pixels must be integers "
                          f"separated by spaces, found {chr(blob[at])!r}")
    previous = np.concatenate([[False], is_digit[:-1]])
    following = np.concatenate([is_digit[1:], [False]])
    starts = np.flatnonzero(is_digit & ~previous)
    ends = np.flatnonzero(is_digit & ~following) + 1
    counts = np.diff(np.searchsorted(starts, np.append(row_starts, len(blob))))
    wrong = np.flatnonzero(counts != PIXELS)
    if len(wrong):
        row = int(wrong[0])
        raise FercnnError(f"{name}: line {line_numbers[row]}: expected {PIXELS} pixel values, "
                          f"found {counts[row]}")
    lengths = ends - starts
    if lengths.max() > 3:
        at = int(starts[np.argmax(lengths > 3)])
        raise FercnnError(f"{name}: line {line_numbers[row_of(at)]}: pixel values must be in "
                          "0..255")
    digits = blob - np.uint8(ord("0"))
    values = digits[starts].astype(np.int16)
    for k in (1, 2):
        longer = lengths > k
        values[longer] = values[longer] * 10 + digits[starts[longer] + k]
    if values.max() > 255:
        at = int(starts[np.argmax(values > 255)])
        raise FercnnError(f"{name}: line {line_numbers[row_of(at)]}: pixel values must be in "
                          "0..255")
    return values.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
