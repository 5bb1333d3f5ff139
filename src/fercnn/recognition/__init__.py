"""Recognition: photos, folders, video frames in; faces with emotions out.

This layer runs on numpy, OpenCV, Pillow and onnxruntime and never imports torch: one image
goes ``images`` (load, gray) -> a detector (``blazeface``, or ``haar``) -> ``crop`` (48x48,
FER-2013's framing, eyes levelled) -> ``recognizer`` (the ONNX model) -> ``annotate`` /
``video`` (with ``tracks``) / JSON. ``bundled`` names the models that ship in the package,
``evaluate`` scores exported models and labelled photos, ``batch`` runs many images over a
pool of processes and ``cluster`` over Dask.
"""

from .blazeface import BlazeFaceDetector
from .bundled import ASSETS, BUNDLED_MODELS, DEFAULT_MODEL, DEMO_PHOTO, is_onnx
from .faces import Box, Face, FaceDetector
from .haar import HaarDetector
from .images import load_image, to_gray
from .recognizer import FaceResult, Recognizer

__all__ = ["ASSETS", "BUNDLED_MODELS", "DEFAULT_MODEL", "DEMO_PHOTO", "BlazeFaceDetector", "Box",
           "Face", "FaceDetector", "FaceResult", "HaarDetector", "Recognizer", "is_onnx",
           "load_image", "to_gray"]
