"""Any image a user has, as the uint8 arrays recognition works on: files of any format Pillow
reads (EXIF-rotated; 16-bit and float files scaled, not clipped), bytes sent over HTTP, numpy
arrays and PIL images, to BGR for drawing and to gray for the detector and the model. The one
place images enter."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

from ..errors import FercnnError

# What bytes from a stranger may be (decode_image): the photo formats browsers and phones send
# (phones' multi-picture JPEGs open as JPEG). Not every format Pillow opens: EPS, for one,
# would run Ghostscript on the sender's file.
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")


class ImageTooLarge(FercnnError):
    """An image with more pixels than allowed, refused from its header before it is decoded."""


def to_gray(image: np.ndarray, order: str = "bgr") -> np.ndarray:
    """uint8 gray from a gray, BGR(A) or RGB(A) array (``order`` says which for colour).

    uint16 arrays are read as 16-bit images (0-65535), floats up to 1 as 0-1, any other type
    as 0-255 values."""
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] in (3, 4):
        code = {("bgr", 3): cv2.COLOR_BGR2GRAY, ("bgr", 4): cv2.COLOR_BGRA2GRAY,
                ("rgb", 3): cv2.COLOR_RGB2GRAY, ("rgb", 4): cv2.COLOR_RGBA2GRAY}
        gray = cv2.cvtColor(image, code[(order, image.shape[2])])
    elif image.ndim == 3 and image.shape[2] == 1:
        gray = image[:, :, 0]
    else:
        raise FercnnError(f"expected a gray, BGR or RGB image array, got shape {image.shape}")
    if gray.dtype == np.uint16:  # 16-bit images, as cv2.imread(..., IMREAD_UNCHANGED) gives
        gray = np.rint(gray * (255 / 65535)).astype(np.uint8)
    elif gray.dtype != np.uint8:
        if np.issubdtype(gray.dtype, np.floating):  # rounded: 0.5019608 * 255 is 128, not 127
            gray = np.rint(gray * 255 if gray.max(initial=0) <= 1.0 else gray)
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(gray)


def is_deep_gray(image) -> bool:
    """A Pillow image of gray values deeper than 8 bits (modes ``I;16*``, ``I``, ``F``)."""
    return image.mode.startswith("I") or image.mode == "F"


def pil_gray(image) -> np.ndarray:
    """uint8 gray from a Pillow image of any mode. 16-bit gray PNGs and TIFFs, 32-bit integer
    and float TIFFs are scaled here: Pillow's own ``convert("L")`` clips them (a 16-bit
    portrait turns white). 32-bit integers count as 16-bit values when they exceed 255 and
    fit (16-bit PNGs open as ``I`` in some Pillow versions), else as 0-255."""
    if not is_deep_gray(image):
        return np.asarray(image.convert("L"))
    values = np.asarray(image)
    if image.mode == "I":
        low, high = values.min(initial=0), values.max(initial=0)
        values = values.astype(np.uint16) if 0 <= low and 255 < high <= 65535 else \
            np.clip(values, 0, 255).astype(np.uint8)
    elif image.mode.startswith("I;16"):
        values = values.astype(np.uint16)
    return to_gray(values)


def load_image(image, color: str = "bgr") -> np.ndarray:
    """An image as a uint8 array: a path (any format Pillow reads), a numpy array (2-D gray, or
    3-channel in ``color`` order, BGR by default as OpenCV gives) or a PIL image.

    Colour is kept (BGR) so callers can draw on it; :func:`to_gray` makes the model's input.
    16-bit gray files (PNG, TIFF) and float TIFFs are scaled to 8 bits here: Pillow's own
    conversion clips them, and a 16-bit portrait would turn white.
    """
    if isinstance(image, (str, Path)):
        from PIL import Image, ImageOps

        path = Path(image)
        if not path.is_file():
            raise FercnnError(f"{path}: no such file")
        try:
            with Image.open(path) as opened:
                ImageOps.exif_transpose(opened, in_place=True)
                return _pil_to_bgr(opened)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise FercnnError(f"{path}: not a readable image ({e})") from None
    if isinstance(image, np.ndarray):
        if image.ndim == 3 and image.shape[2] in (3, 4) and color == "rgb":
            code = cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGR
            image = cv2.cvtColor(np.ascontiguousarray(image), code)
        return image
    if hasattr(image, "convert"):  # a PIL image
        return _pil_to_bgr(image)
    raise FercnnError(f"cannot read an image from {type(image).__name__}")


def decode_image(data: bytes, max_pixels: int, name: str = "image",
                 formats: tuple[str, ...] = UPLOAD_FORMATS) -> np.ndarray:
    """Bytes from an untrusted sender (an HTTP body) as :func:`load_image` gives a file: BGR,
    EXIF-rotated, decoded in memory only. The size is read from the header first, so a
    decompression bomb (a few kB that decode to gigabytes) or any image over ``max_pixels``
    raises :class:`ImageTooLarge` before a pixel is decoded; anything else Pillow cannot read
    raises :class:`FercnnError`."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data), formats=formats) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"{name}: {width}x{height} is {width * height:,} pixels, "
                                    f"over the limit of {max_pixels:,}")
            ImageOps.exif_transpose(opened, in_place=True)
            return _pil_to_bgr(opened)
    except FercnnError:
        raise
    except Image.DecompressionBombError as e:  # over twice Pillow's own limit
        raise ImageTooLarge(f"{name}: {e}") from None
    except Exception as e:  # corrupt input makes decoders raise all kinds: all mean unreadable
        raise FercnnError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None


def _pil_to_bgr(image) -> np.ndarray:
    """BGR from a Pillow image. cv2.cvtColor swaps the channels: numpy's reversed-axis copy
    took 2 of a 512x512 JPEG's 5 ms to load."""
    if is_deep_gray(image):
        return cv2.cvtColor(pil_gray(image), cv2.COLOR_GRAY2BGR)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2BGR)
