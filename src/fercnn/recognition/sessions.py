"""How the recognition side opens an ONNX model: one CPU onnxruntime session, set up once here
for the models that read faces (the Recognizer's and the photo reader's)."""

from __future__ import annotations

from pathlib import Path

from ..errors import FercnnError


def cpu_session(path: str | Path, threads: int | None = None, what: str = "ONNX model"):
    """An onnxruntime session on the CPU; a file it cannot read is a one-line error that names
    ``what`` it should have been."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # idle onnxruntime threads otherwise spin for a while after each call and take the
    # cores from the face detector that runs next: a photo took 49 ms instead of 35
    # (benchmarks/results/recognition_speed.md), for 7% less pure batch throughput
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise FercnnError(f"{path}: not a readable {what} ({e})") from None
