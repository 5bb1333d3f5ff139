"""Pack FER-2013's Training and PublicTest images small enough to travel to a lent GPU.

The device tool carries at most 64 MiB, the repository's tracked files (about 16 MB) included,
and the CSV's own xz is 74 MB. Here each image becomes its residual from the median edge
predictor of JPEG-LS (LOCO-I), then all of them go through xz: about 1,550 bytes an image
against 1,770 for xz of the raw pixels, so Training and PublicTest take about 50 MB. Lossless:
``unpack`` checks a SHA-256 of the arrays. PrivateTest is never packed: the models trained
there are scored here, on CPU, once (the protocol of issue #5).

    python scripts/device_data.py pack fer2013.csv.xz .device/fer2013-trainval.xz \\
        [--ferplus fer2013new.csv]
    python scripts/device_data.py unpack .device/fer2013-trainval.xz /tmp/fer2013.csv

``unpack`` writes an ordinary ``fer2013.csv`` (and, when packed, ``fer2013new.csv`` beside
it, cut to the same rows, so FER+ still joins by row position), which every fercnn command
reads as it reads the original.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np

from fercnn.data import load_dataset, load_ferplus
from fercnn.data.ferplus import check_ferplus_matches
from fercnn.errors import FercnnError
from fercnn.labels import SPLITS

PACKED_SPLITS = ("Training", "PublicTest")
TRAVEL_LIMIT_MIB = 64
FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "lc": 4}]


def _neighbours(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left, upper and upper-left neighbour of every pixel (0 outside the image)."""
    left, up, corner = (np.zeros_like(images) for _ in range(3))
    left[:, :, 1:] = images[:, :, :-1]
    up[:, 1:, :] = images[:, :-1, :]
    corner[:, 1:, 1:] = images[:, :-1, :-1]
    return left, up, corner


def _median_edge(left: np.ndarray, up: np.ndarray, corner: np.ndarray) -> np.ndarray:
    """LOCO-I's prediction: min or max of left and up at an edge, else the plane through all."""
    high, low = np.maximum(left, up), np.minimum(left, up)
    return np.where(corner >= high, low, np.where(corner <= low, high, left + up - corner))


def residuals(images: np.ndarray) -> np.ndarray:
    """Each pixel minus its prediction, modulo 256 (uint8, same shape)."""
    x = images.astype(np.int16)
    return ((x - _median_edge(*_neighbours(x))) % 256).astype(np.uint8)


def reconstruct(residual: np.ndarray) -> np.ndarray:
    """The inverse of :func:`residuals`: pixel by pixel in raster order, all images at once."""
    n, height, width = residual.shape
    x = np.zeros((n, height + 1, width + 1), dtype=np.int16)  # a zero row and column in front
    r = residual.astype(np.int16)
    for i in range(height):
        for j in range(width):
            prediction = _median_edge(x[:, i + 1, j], x[:, i, j + 1], x[:, i, j])
            x[:, i + 1, j + 1] = (r[:, i, j] + prediction) % 256
    return x[:, 1:, 1:].astype(np.uint8)


def digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        h.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def pack(data: str, out: Path, ferplus: str | None = None) -> dict:
    """Write the packed Training and PublicTest rows of ``data``; returns a summary."""
    dataset = load_dataset(data)
    keep = np.isin(dataset.usage, [SPLITS.index(s) for s in PACKED_SPLITS])
    rows = int(keep.sum())
    if not keep[:rows].all():  # FER+ joins by position: the packed rows must come first
        raise FercnnError(f"{data}: Training and PublicTest rows must precede PrivateTest")
    arrays = {"images": dataset.images[keep], "labels": dataset.labels[keep].astype(np.uint8),
              "usage": dataset.usage[keep]}
    stored = {"residuals": residuals(arrays["images"]), "labels": arrays["labels"],
              "usage": arrays["usage"], "sha256": np.array(digest(arrays))}
    if ferplus is not None:  # kept as its text, cut to the packed rows: header + one per row
        check_ferplus_matches(dataset, load_ferplus(ferplus))
        lines = Path(ferplus).read_bytes().splitlines(keepends=True)
        stored["ferplus"] = np.frombuffer(b"".join(lines[:rows + 1]), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **stored)
    packed = lzma.compress(buffer.getvalue(), format=lzma.FORMAT_XZ, filters=FILTERS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(packed)
    summary = {"rows": rows, "bytes": len(packed), "bytes_per_image": round(len(packed) / rows)}
    tree = checkout_bytes(out.resolve().parent)
    if tree is not None:  # what the device tool would send, this file carried with the tree
        summary["travels"] = f"{(tree + len(packed)) / 2**20:.1f} of {TRAVEL_LIMIT_MIB} MiB"
    return summary


def checkout_bytes(folder: Path) -> int | None:
    """Bytes of the git checkout holding ``folder`` that travel with every device call: the
    tracked files and the untracked ones git does not ignore (None outside a checkout)."""
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=folder,
                          capture_output=True, text=True)
    if root.returncode:
        return None
    top = Path(root.stdout.strip())
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=top, capture_output=True, check=True)
    files = (top / name for name in listing.stdout.decode().split("\0") if name)
    return sum(f.stat().st_size for f in files if f.is_file())


def unpack(packed: Path, csv_out: Path) -> dict:
    """Write ``csv_out`` (and ``fer2013new.csv`` beside it when packed); returns a summary."""
    try:
        stored = np.load(io.BytesIO(lzma.decompress(packed.read_bytes())), allow_pickle=False)
    except FileNotFoundError:
        raise FercnnError(f"{packed}: no such file") from None
    except (lzma.LZMAError, ValueError, OSError) as e:
        raise FercnnError(f"{packed}: not a packed FER-2013 file ({e})") from None
    missing = {"residuals", "labels", "usage", "sha256"} - set(stored.files)
    if missing:
        raise FercnnError(f"{packed}: not a packed FER-2013 file (no {', '.join(sorted(missing))})")
    arrays = {"images": reconstruct(stored["residuals"]), "labels": stored["labels"],
              "usage": stored["usage"]}
    if digest(arrays) != str(stored["sha256"]):
        raise FercnnError(f"{packed}: the unpacked images do not match the packed checksum")
    lines = [b"emotion,pixels,Usage\n"]
    for image, label, usage in zip(arrays["images"], arrays["labels"], arrays["usage"],
                                   strict=True):
        pixels = " ".join(map(str, image.ravel().tolist()))
        lines.append(f"{label},{pixels},{SPLITS[usage]}\n".encode())
    csv_out.parent.mkdir(parents=True, exist_ok=True)
    csv_out.write_bytes(b"".join(lines))
    if "ferplus" in stored:
        (csv_out.parent / "fer2013new.csv").write_bytes(stored["ferplus"].tobytes())
    return {"rows": len(arrays["labels"]), "ferplus": "ferplus" in stored}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack", help="FER-2013 CSV -> packed Training + PublicTest")
    p.add_argument("data")
    p.add_argument("out", type=Path)
    p.add_argument("--ferplus", help="fer2013new.csv, cut to the same rows")
    u = verbs.add_parser("unpack", help="packed file -> fer2013.csv")
    u.add_argument("packed", type=Path)
    u.add_argument("csv", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.verb == "pack":
            summary = pack(args.data, args.out, args.ferplus)
        else:
            summary = unpack(args.packed, args.csv)
    except FercnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
