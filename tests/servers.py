"""Real servers for the serve tests: ``fercnn serve`` in a subprocess, or an app under uvicorn
in a thread, each on a free port of 127.0.0.1, stopped when the test is done."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from functools import partial

from .conftest import REPO


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(url: str, timeout: float = 60, process=None) -> None:
    """Poll ``url``/healthz until it answers; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: "
                               f"{process.stderr.read() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not start within {timeout} s")


@contextlib.contextmanager
def serve_cli(*args: str) -> Iterator[str]:
    """``fercnn serve ARGS`` on a free port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "fercnn", "serve", "--port", str(port), *args], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process=process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def serve_in_thread(app, header_timeout: float = 10.0, keep_alive: int = 5,
                    sock: socket.socket | None = None) -> Iterator[tuple[str, object]]:
    """``app`` under uvicorn in a thread of this process, with fercnn's HTTP protocol, on a
    free port or on ``sock`` (listening already, as ``--workers`` hands one to each worker);
    yields the base URL and the ``uvicorn.Server``."""
    import uvicorn

    from fercnn.serve.protocol import DeadlineH11Protocol

    port = sock.getsockname()[1] if sock else free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_keep_alive=keep_alive,
                            http=partial(DeadlineH11Protocol, header_timeout=header_timeout))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock] if sock else None},
                              daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url)
        yield url, server
    finally:
        server.should_exit = True
        thread.join(timeout=15)
