"""One image's bytes to the answer's JSON. Runs on a worker thread, never on the event loop:
decoding and recognising take tens of milliseconds of CPU, which would stall every other
connection of the process."""

from __future__ import annotations

from time import perf_counter

from ..errors import FercnnError
from ..recognition.images import ImageTooLarge, decode_image
from ..recognition.recognizer import Recognizer, image_report
from .errors import ApiError


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def recognize_bytes(recognizer: Recognizer, data: bytes, name: str, detect: bool,
                    max_pixels: int) -> dict:
    """``fercnn predict --json``'s entry for one image, with its decoded width and height
    (after EXIF rotation: what the boxes refer to) and the milliseconds each step took.
    413 for an image over ``max_pixels`` (decompression bombs), 415 for one that cannot be
    read."""
    start = perf_counter()
    try:
        image = decode_image(data, max_pixels, name)
    except ImageTooLarge as e:
        raise ApiError(413, str(e)) from None
    except FercnnError as e:
        raise ApiError(415, str(e)) from None
    decoded = perf_counter()
    faces = recognizer.predict(image, detect=detect)
    done = perf_counter()
    report = image_report(name, faces)
    report["width"], report["height"] = int(image.shape[1]), int(image.shape[0])
    report["timing_ms"] = {"decode": _ms(decoded - start), "recognize": _ms(done - decoded)}
    return report
