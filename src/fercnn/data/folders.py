"""The image-folder layout of the Kaggle download: ``train/<class>/*.jpg`` and ``test/<class>/*``.

Any size or colour is turned into 48x48 gray. The layout has no PublicTest/PrivateTest, so
``test/`` becomes PrivateTest and PublicTest (validation) is a stratified, seeded hold-out from
``train/`` -- unless a ``val/`` folder exists (``export-folders`` writes one), which is then used.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from ..errors import FercnnError
from ..labels import EMOTIONS, IMAGE_SIZE, SPLITS
from ..recognition.images import pil_gray
from . import cache
from .dataset import FerDataset

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".pgm", ".ppm", ".pnm",
                  ".tif", ".tiff", ".webp"}
TRAIN_NAMES = ("train", "training")
VAL_NAMES = ("val", "valid", "validation", "publictest")
TEST_NAMES = ("test", "privatetest")


def is_folder_dataset(path: Path) -> bool:
    return path.is_dir() and _find(path, TRAIN_NAMES) is not None


def _find(root: Path, names: tuple[str, ...]) -> Path | None:
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() in names:
            return child
    return None


def list_class_folders(folder: Path) -> list[tuple[Path, int]]:
    """(file, class index) for every image under ``folder/<class>/``, sorted by file name.

    Sorting by name across classes keeps exported rows in their CSV order.
    """
    files = []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        name = class_dir.name.lower()
        if name not in EMOTIONS:
            raise FercnnError(f"{class_dir}: unknown class folder; expected one of "
                              f"{', '.join(EMOTIONS)}")
        images = [p for p in class_dir.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith(".")]
        if not images:
            raise FercnnError(f"{class_dir}: class folder has no images")
        files += [(p, EMOTIONS.index(name)) for p in images]
    if not files:
        raise FercnnError(f"{folder}: no class folders with images")
    return sorted(files, key=lambda item: (item[0].name, item[1]))


def read_face(path: Path) -> np.ndarray:
    """One image file as 48x48 uint8 gray (INTER_AREA when shrinking).

    Decoded with Pillow rather than OpenCV: a broken file then raises a Python error instead
    of libpng/libjpeg printing warnings to stderr.
    """
    try:
        with Image.open(path) as opened:
            image = pil_gray(ImageOps.exif_transpose(opened))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise FercnnError(f"{path}: cannot read image ({e})") from None
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        shrink = image.shape[0] > IMAGE_SIZE or image.shape[1] > IMAGE_SIZE
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A boolean mask choosing ``fraction`` of each class (rounded), reproducibly."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        take = int(round(len(members) * fraction))
        mask[rng.choice(members, size=take, replace=False)] = True
    return mask


def _listing_key(entries: list[tuple[Path, int]]) -> str:
    """Cache key from names, sizes and modification times: cheap, and changes with the files."""
    h = hashlib.sha256()
    for path, label in entries:
        st = path.stat()
        h.update(f"{path}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def load_folders(root: str | Path, val_fraction: float = 0.1, seed: int = 0,
                 use_cache: bool = True) -> FerDataset:
    root = Path(root)
    if not root.is_dir():
        raise FercnnError(f"{root}: no such folder")
    train_dir, val_dir, test_dir = (_find(root, n) for n in (TRAIN_NAMES, VAL_NAMES, TEST_NAMES))
    if train_dir is None or test_dir is None:
        raise FercnnError(f"{root}: expected train/ and test/ folders with one folder per class")
    if not 0.0 < val_fraction < 1.0 and val_dir is None:
        raise FercnnError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    folders = {0: train_dir, 1: val_dir, 2: test_dir}  # keys index SPLITS
    listed = {code: list_class_folders(folder) for code, folder in folders.items() if folder}
    key_entries = [entry for entries in listed.values() for entry in entries]
    key = f"folders-{_listing_key(key_entries)}-{val_fraction}-{seed}"
    arrays = cache.load_arrays(key) if use_cache else None
    if arrays is None:
        images, labels, usage = [], [], []
        for code, entries in sorted(listed.items()):
            images += [read_face(path) for path, _ in entries]
            labels += [label for _, label in entries]
            usage += [code] * len(entries)
        arrays = {"images": np.stack(images), "labels": np.array(labels, dtype=np.uint8),
                  "usage": np.array(usage, dtype=np.uint8)}
        if val_dir is None:
            train = np.flatnonzero(arrays["usage"] == 0)
            held = stratified_holdout(arrays["labels"][train], val_fraction, seed)
            arrays["usage"][train[held]] = SPLITS.index("PublicTest")
        if use_cache:
            cache.save_arrays(key, arrays)
    return FerDataset(arrays["images"], arrays["labels"].astype(np.int64), arrays["usage"],
                      source=str(root))


def export_folders(dataset: FerDataset, out: str | Path) -> dict[str, int]:
    """Write every image as a lossless PNG: ``train|val|test/<class>/<row>.png``.

    Training -> train, PublicTest -> val, PrivateTest -> test; the file name is the row index,
    zero-padded, so reading the folders back restores each split's rows in CSV order. An
    existing, non-empty ``out`` is refused rather than mixed with old files.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FercnnError(f"{out}: output folder is not empty")
    folder_of = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
    made: set[Path] = set()
    written = dict.fromkeys(SPLITS, 0)
    width = len(str(len(dataset)))
    for row, (image, label, code) in enumerate(zip(dataset.images, dataset.labels,
                                                   dataset.usage, strict=True)):
        split = SPLITS[code]
        folder = out / folder_of[split] / EMOTIONS[label]
        if folder not in made:
            folder.mkdir(parents=True, exist_ok=True)
            made.add(folder)
        path = folder / f"{row:0{width}d}.png"
        if not cv2.imwrite(str(path), image):
            raise FercnnError(f"{path}: cannot write image")
        written[split] += 1
    return written
