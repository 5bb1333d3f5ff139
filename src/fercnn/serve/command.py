"""``fercnn serve``: its options, and starting uvicorn with them. Imports nothing of FastAPI
or uvicorn until the command runs, so the rest of the CLI works without the ``serve`` extra."""

from __future__ import annotations

import argparse
import functools
import importlib.util
import multiprocessing
import os
import socket
import sys
from concurrent.futures import ProcessPoolExecutor

from ..errors import FercnnError
from .settings import ENV, MB, Limits, Settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")
EXTRA = ("fastapi", "uvicorn", "python_multipart")  # what the serve extra installs


def _count(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, "
                                             f"not {text}")
        return value
    return parse


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``serve`` subcommand's parser, on the CLI's subparsers."""
    p = sub.add_parser("serve", help="an HTTP API and a web page for recognition "
                       "(pip install \"fercnn[serve]\")")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                   "127.0.0.1, this machine only; 0.0.0.0: every network)")
    p.add_argument("--port", type=_count(1, 65535), default=8000, help="default 8000")
    p.add_argument("--model", default="default", metavar="M", help="the default model: "
                   "'default', 'accurate', 'tiny' or an exported .onnx file (offered as its name)")
    p.add_argument("--workers", type=_count(1, 64), default=1, metavar="N",
                   help="worker processes, each with its own models (default 1)")
    p.add_argument("--threads", type=_count(1, 64), default=2, metavar="N",
                   help="inference threads per worker (default 2)")
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="let pages from ORIGIN call the API (repeatable; default: none)")
    p.add_argument("--max-upload-mb", type=_count(1, 1024), default=Limits.max_body_bytes // MB,
                   metavar="MB", help="largest request body (default %(default)s)")
    p.add_argument("--max-megapixels", type=_count(1, 1000),
                   default=Limits.max_pixels // 1_000_000, metavar="MP",
                   help="largest image, in millions of pixels (default %(default)s)")
    p.add_argument("--max-concurrent", type=_count(1, 4096), default=Limits.max_concurrent,
                   metavar="N", help="requests in progress per worker; more get 503 "
                   "(default %(default)s)")
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    limits = Limits(max_body_bytes=args.max_upload_mb * MB,
                    max_pixels=args.max_megapixels * 1_000_000,
                    max_concurrent=args.max_concurrent)
    return Settings(model=args.model, cors=tuple(args.cors), threads=args.threads,
                    limits=limits)


def check_port(host: str, port: int) -> None:
    """Fail with one line before uvicorn starts if the address cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            probe.bind(address)
    except OSError as e:
        raise FercnnError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def _installed(name: str) -> bool:
    """Whether ``name`` can be imported, found without importing it (FastAPI would cost the
    supervising process of ``--workers`` tens of MB)."""
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def check_model(model: str, elsewhere: bool = False) -> None:
    """A bad model: one line now, not a traceback in each worker. ``elsewhere``: load it in
    a short-lived process, for when this one only watches the workers (``--workers`` over 1)
    and should not hold onnxruntime, OpenCV and a model (about 55 MB) for nothing."""
    if elsewhere:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            pool.submit(check_model, model).result()
        return
    from .catalog import ModelCatalog

    catalog = ModelCatalog(model)
    catalog.recognizer(catalog.default)


def _announce(args: argparse.Namespace) -> None:
    where = f"http://{args.host if ':' not in args.host else f'[{args.host}]'}:{args.port}/"
    print(f"fercnn: the page and the API on {where} ({args.workers} worker(s), model "
          f"{args.model}); Ctrl+C stops", file=sys.stderr)
    if args.host not in LOOPBACK:
        print("fercnn: listening beyond this machine: anyone who can reach it can send "
              "images (see docs/serving.md for a reverse proxy with TLS)", file=sys.stderr)


def serve(args: argparse.Namespace) -> int:
    """Check the model and the address, then run uvicorn until interrupted."""
    missing = [name for name in EXTRA if not _installed(name)]
    if missing:
        raise FercnnError(f"fercnn serve needs the serve extra ({', '.join(missing)} "
                          "missing): pip install \"fercnn[serve]\"")
    import uvicorn

    from .protocol import DeadlineH11Protocol

    settings = settings_from(args)
    check_model(settings.model, elsewhere=args.workers > 1)
    check_port(args.host, args.port)
    os.environ[ENV] = settings.to_json()
    _announce(args)
    limits = settings.limits
    uvicorn.run("fercnn.serve.app:app_from_env", factory=True, host=args.host, port=args.port,
                workers=args.workers, timeout_keep_alive=int(limits.keep_alive_s),
                http=functools.partial(DeadlineH11Protocol,
                                       header_timeout=limits.header_timeout_s),
                server_header=False, log_level="info")
    return 0
