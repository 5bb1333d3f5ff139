"""How one worker process refuses more than its ``Limits``: a bounded number of requests in
progress, a body size and time limit. Each refusal is an ApiError with its status; nothing
waits in an unbounded queue and nothing a client sends is written to disk."""

from __future__ import annotations

import threading

import anyio
from starlette.requests import ClientDisconnect, Request

from .errors import ApiError
from .settings import Limits


class Gate:
    """At most ``limit`` requests in progress: a bounded semaphore taken without waiting, so
    a request over the limit is refused at once instead of piling up in memory."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"the limit must be at least 1, not {limit}")
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def try_enter(self) -> bool:
        return self._slots.acquire(blocking=False)

    def leave(self) -> None:
        self._slots.release()


def _declared_length(request: Request, max_bytes: int) -> None:
    """Refuse at once a body whose Content-Length is over the limit (a lie below it is
    caught while reading)."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise ApiError(400, f"Content-Length is not a number: {declared[:40]!r}")
    if int(declared) > max_bytes:
        raise ApiError(413, f"the body is {int(declared):,} bytes, over the limit of "
                       f"{max_bytes:,}")


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body, in memory: 413 as soon as it passes ``max_body_bytes`` (counted
    while reading, whatever Content-Length says, chunked bodies too), 408 when it has not all
    arrived within ``body_timeout_s``."""
    _declared_length(request, limits.max_body_bytes)
    chunks, size = [], 0
    try:
        with anyio.fail_after(limits.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body_bytes:
                    raise ApiError(413, f"the body is over the limit of "
                                   f"{limits.max_body_bytes:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"the body did not arrive within {limits.body_timeout_s:g} s",
                       {"Connection": "close"}) from None
    except ClientDisconnect:
        raise ApiError(400, "the client went away before sending the whole body") from None
    return b"".join(chunks)
