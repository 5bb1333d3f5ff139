"""The API: ``POST /v1/recognize``, ``GET /v1/models``, ``GET /healthz``. Handlers stay thin:
limits, then the upload, then the pipeline on the inference threads."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from time import perf_counter
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from ..errors import FercnnError
from ..tta import tta_mode
from .catalog import ModelCatalog, Options
from .errors import ApiError
from .limits import Gate, read_body
from .pipeline import recognize_bytes
from .settings import Settings
from .upload import image_bytes


@dataclass
class ServerState:
    """What one worker process holds for all its requests (injected, not global)."""

    settings: Settings
    catalog: ModelCatalog
    gate: Gate
    executor: ThreadPoolExecutor

    async def run(self, fn, *args):
        """``fn(*args)`` on the inference threads, awaited without blocking the loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)


def server_state(request: Request) -> ServerState:
    return request.app.state.fercnn


StateDep = Annotated[ServerState, Depends(server_state)]
router = APIRouter()

_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}},
    "image/*": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/v1/recognize", openapi_extra=_BODY)
async def recognize(
        request: Request, state: StateDep,
        model: Annotated[str | None, Query(max_length=200)] = None,
        tta: Annotated[str, Query(max_length=10)] = "mirror", detect: bool = True,
        detector: Literal["blazeface", "haar"] = "blazeface",
        min_face: Annotated[int | None, Query(ge=20, le=4096)] = None,
        align: bool = True, photo_reader: bool = True,
        prior: Literal["fer2013", "photos"] = "fer2013") -> JSONResponse:
    """The faces of one image with their emotions: the JSON of ``fercnn predict --json`` for
    it, with the image's width and height, the model, views and prior used and the
    milliseconds taken. ``tta``: the views of
    each face averaged, ``none``, ``mirror`` (default) or ``ten`` (``true`` and ``false``, its
    earlier values, mean ``ten`` and ``none``). ``photo_reader=false``: the model alone, as
    ``predict --no-photo-reader``. ``prior=photos``: read for the mix of expressions in
    photos, as ``predict --prior photos``."""
    start = perf_counter()
    limits = state.settings.limits
    if not state.gate.try_enter():
        raise ApiError(503, f"busy: {state.gate.limit} requests in progress, try again",
                       {"Retry-After": str(limits.retry_after_s)})
    try:
        options = Options(state.catalog.resolve(model), _tta_mode(tta), detect, detector,
                          min_face, align, photo_reader, prior)
        body = await read_body(request, limits)
        read = perf_counter()
        data, filename = image_bytes(body, request.headers.get("content-type"))
        report = await state.run(_recognize, state, options, data, filename or "upload")
    finally:
        state.gate.leave()
    report["timing_ms"] = {"read": round((read - start) * 1000, 2), **report["timing_ms"],
                           "total": round((perf_counter() - start) * 1000, 2)}
    return JSONResponse(report)


def _tta_mode(value: str) -> str:
    try:
        return tta_mode(value)
    except FercnnError as e:
        raise ApiError(422, f"query tta: {e}") from None


def _recognize(state: ServerState, options: Options, data: bytes, name: str) -> dict:
    model, recognizer = state.catalog.for_request(options)
    report = recognize_bytes(recognizer, data, name, options.detect,
                             state.settings.limits.max_pixels)
    report.update(model=model, tta=options.tta, prior=options.prior)
    return report


@router.get("/v1/models")
async def models(state: StateDep) -> JSONResponse:
    """The models to choose from (``?model=NAME``), with their ONNX metadata."""
    return JSONResponse({"default": state.catalog.default,
                         "models": await state.run(state.catalog.describe)})


@router.get("/healthz")
async def healthz(state: StateDep) -> JSONResponse:
    """Alive, with the default model loaded (a worker loads it before taking requests)."""
    return JSONResponse({"status": "ok", "default_model": state.catalog.default})
