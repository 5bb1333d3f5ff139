"""fercnn: facial expression recognition on FER-2013.

Importing fercnn never imports torch: recognition runs on numpy, OpenCV and onnxruntime.
"""

from .errors import FercnnError
from .labels import EMOTIONS, SPLITS

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "SPLITS", "FercnnError", "Recognizer", "load_dataset", "__version__"]


def load_dataset(*args, **kwargs):
    """See :func:`fercnn.data.load_dataset` (imported lazily to keep ``import fercnn`` light)."""
    from .data import load_dataset as _load

    return _load(*args, **kwargs)


def __getattr__(name: str):
    if name == "Recognizer":  # imported on first use: it loads onnxruntime
        from .recognition import Recognizer

        return Recognizer
    raise AttributeError(f"module 'fercnn' has no attribute {name!r}")
