"""A server's settings and limits (plain values: the CLI reads them without FastAPI), and
how they reach its worker processes: uvicorn starts each worker afresh from an import string,
so ``fercnn serve`` hands them over as JSON in one environment variable that the app factory
reads. ``limits`` enforces them."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

ENV = "FERCNN_SERVE_SETTINGS"
MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per worker process. The defaults fit a 12-48 megapixel phone photo and a few CPU
    cores; a request over ``max_concurrent`` gets 503 at once (Retry-After) rather than
    queueing behind minutes of work."""

    max_body_bytes: int = 20 * MB  # a JPEG straight from a phone camera is 2-12 MB
    max_pixels: int = 50_000_000  # 8000x6000 (a 48 MP phone photo) and a little more
    max_concurrent: int = 16  # requests being read, decoded or recognised at once
    body_timeout_s: float = 30.0  # the whole body must arrive within this
    header_timeout_s: float = 10.0  # a connection's request headers must arrive within this
    keep_alive_s: float = 5.0  # an idle connection is closed after this
    retry_after_s: int = 1  # what a 503 tells the client to wait


@dataclass(frozen=True)
class Settings:
    model: str = "default"  # the default model: a bundled name or an .onnx file
    cors: tuple[str, ...] = ()  # origins allowed to call the API from their pages; none: off
    threads: int = 2  # inference threads per worker process (decoding and recognising)
    limits: Limits = field(default_factory=Limits)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Settings:
        values = json.loads(text)
        return cls(model=values["model"], cors=tuple(values["cors"]),
                   threads=values["threads"], limits=Limits(**values["limits"]))

    @classmethod
    def from_env(cls) -> Settings:
        text = os.environ.get(ENV)
        return cls.from_json(text) if text else cls()
