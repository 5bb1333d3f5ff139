"""The models and the photo that ship inside the package, and how a model name becomes a file.

``default``, ``accurate`` and ``tiny`` can be named wherever a model file is expected
(assets/README.md says what each is and where it came from)."""

from __future__ import annotations

from pathlib import Path

from ..errors import FercnnError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_MODEL = ASSETS / "default.onnx"
BUNDLED_MODELS = {"default": DEFAULT_MODEL, "accurate": ASSETS / "accurate.onnx",
                  "tiny": ASSETS / "tiny.onnx"}
# the models read together with the photo reader (photo_reader.py) unless told otherwise
PHOTO_READER_MODELS = {BUNDLED_MODELS["default"], BUNDLED_MODELS["accurate"]}
DEMO_PHOTO = ASSETS / "astronaut.png"  # NASA, Eileen Collins: public domain (assets/README.md)


def is_onnx(model: str | Path) -> bool:
    """A bundled model's name or an exported file: run by onnxruntime, never by torch."""
    return str(model) in BUNDLED_MODELS or str(model).endswith(".onnx")


def model_path(model: str | Path | None) -> Path:
    """The file of a bundled model's name (None: the default) or of a path, checked to exist."""
    name = "default" if model is None else str(model)
    path = BUNDLED_MODELS.get(name, Path(name))
    if not path.is_file():
        if name in BUNDLED_MODELS:
            raise FercnnError(f"this install has no bundled '{name}' model; pass a model "
                              "exported with `fercnn export` (--model / Recognizer(path))")
        raise FercnnError(f"{path}: no such model file (bundled models: "
                          f"{', '.join(BUNDLED_MODELS)})")
    return path
