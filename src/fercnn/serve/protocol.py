"""uvicorn's HTTP/1.1 protocol with deadlines for what uvicorn would wait on for ever.

uvicorn closes a connection idle after a response (``timeout_keep_alive``), but it waits
without limit for the first request's headers, so a client that connects and sends nothing,
or a byte a minute, holds a connection (and a file descriptor) for good. And after answering
a request before its body has all arrived (a 413), uvicorn reads and drops the rest of the
body so that the client sees the answer, again without limit. Here both end ``timeout``
seconds after the connection opened or the previous response went out: the headers must be
complete by then, and a refused body's remainder has that long to arrive (nginx's
``client_header_timeout`` and ``lingering_time``).

It also turns Nagle's algorithm off on every connection. asyncio does so only for sockets made
as TCP ones (protocol 6); with ``--workers``, uvicorn's shared listening socket is made with
protocol 0, so its connections kept Nagle on and each answer, written as headers then body,
waited for the client's delayed ACK: 64 ms a request instead of 24 (measured, one client)."""

from __future__ import annotations

import asyncio
import socket

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    """H11Protocol closing the connection when headers, or a refused body, are late."""

    def __init__(self, *args, header_timeout: float = 10.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout
        self.deadline: asyncio.TimerHandle | None = None

    def _waiting_on_client(self) -> bool:
        """No request under way: waiting for headers, or for a refused body's tail."""
        return self.conn.their_state is h11.IDLE or self.conn.our_state in (h11.DONE,
                                                                          h11.MUST_CLOSE)

    def _arm(self) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(self.header_timeout, self._late)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _late(self) -> None:
        self.deadline = None
        if self._waiting_on_client() and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._waiting_on_client():  # a request is being answered: no deadline
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
