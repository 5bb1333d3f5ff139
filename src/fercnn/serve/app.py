"""The FastAPI application: the API routes, the page at ``/``, the error shape, the headers.

Everything it serves comes from the package: FastAPI's /docs and /redoc pages load their
scripts from a CDN, so they are off (``/openapi.json`` stays), and the page's Content
Security Policy lets it load nothing from anywhere else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from . import errors
from .catalog import ModelCatalog
from .limits import Gate
from .routes import ServerState, router
from .settings import Settings

STATIC = Path(__file__).resolve().parent / "static"
HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(self), microphone=()"),
]


class SecurityHeaders:
    """Adds ``HEADERS`` to every response (a plain ASGI middleware: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    """An app for one worker process: its default model loaded now, so that a bad model
    fails at start-up and the first request is not slow."""
    settings = settings or Settings()
    catalog = ModelCatalog(settings.model)
    catalog.recognizer(catalog.default)
    executor = ThreadPoolExecutor(settings.threads, thread_name_prefix="fercnn-recognize")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="fercnn", version=__version__, docs_url=None, redoc_url=None,
                  lifespan=lifespan, summary="Emotions of the faces in an image.")
    app.state.fercnn = ServerState(settings, catalog, Gate(settings.limits.max_concurrent),
                                   executor)
    errors.install(app)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    if settings.cors:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors),
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type"])
    app.add_middleware(SecurityHeaders)
    return app


def app_from_env() -> FastAPI:
    """uvicorn's factory in each worker process: the settings ``fercnn serve`` put in the
    environment."""
    return create_app(Settings.from_env())
