"""``fercnn serve`` under load: requests/s, latency percentiles, errors and memory.

    python benchmarks/serve_load.py [--seconds 10] [--workers 1 2] [--clients 1 4 16]

For each number of worker processes N, a real ``fercnn serve --workers N`` is started on
127.0.0.1; for each number of clients K, K concurrent clients (one httpx.AsyncClient, K
connections) post the bundled portrait as a JPEG (the page's camera frames and most phone
photos are JPEGs) for a fixed time, each sending its next request when the previous one is
answered. A row gives requests/s, p50/p95/p99 latency, errors (anything but a 200 with a face;
must be 0) and the server's resident memory (all its processes) before and after.

One more run mixes hostile clients in with good ones: bodies over the size limit, bodies that
are not images, and decompression bombs (8000x8000 PNGs of 62 kB). Each must get its 4xx
(413, 415, 413) and every good request must still succeed.

The clients run on the same machine as the server and take CPU from it; results are written
to benchmarks/results/serve_load.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from host import cpu_description
from PIL import Image

from fercnn.recognition import DEMO_PHOTO

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parent.parent
HOSTILE_PERIOD_S = 0.1  # each hostile client sends at most ten requests a second


@dataclass
class Row:
    workers: int
    clients: int
    seconds: float
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    rss_before_mb: float = 0.0
    rss_after_mb: float = 0.0
    pss_after_mb: float = 0.0
    hostile: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict:
        values = sorted(self.latencies_ms)
        row = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        row["requests_per_s"] = round(self.requests / self.seconds, 1)
        for q in (50, 95, 99):
            row[f"p{q}_ms"] = round(percentile(values, q), 1) if values else None
        return row


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile by linear interpolation between the closest ranks."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def tree_memory_mb(root: int) -> tuple[float, float]:
    """Resident memory (RSS) of ``root`` and all its descendants, and their proportional set
    size (PSS: pages shared between them, as the workers' libraries are, counted once), from
    /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid]
        tree.update(children)
        frontier += children
    kb = {"Rss:": 0, "Pss:": 0}
    for pid in tree:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.split()[0] in kb:
                    kb[line.split()[0]] += int(line.split()[1])
    return round(kb["Rss:"] / 1024, 1), round(kb["Pss:"] / 1024, 1)


def load_average() -> str:
    """The 1-minute load average: over the core count, other work shared the CPUs."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def server(workers: int) -> Iterator[tuple[str, int]]:
    """``fercnn serve --workers N`` on a free port: (base URL, its process id)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "fercnn", "serve", "--port", str(port),
                                "--workers", str(workers)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fercnn serve --workers {workers} did not start")
            time.sleep(0.3)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def payloads() -> dict[str, tuple[bytes, str]]:
    """The good request's JPEG, and the hostile requests' bodies with their content types."""
    photo = io.BytesIO()
    Image.open(DEMO_PHOTO).convert("RGB").save(photo, "JPEG", quality=90)
    bomb = io.BytesIO()
    Image.new("L", (8000, 8000)).save(bomb, "PNG")
    return {"good": (photo.getvalue(), "image/jpeg"),
            "oversize": (b"\0" * (21 << 20), "image/jpeg"),  # the limit is 20 MB
            "not-image": (b"<html>not an image</html>" * 40, "image/png"),
            "bomb": (bomb.getvalue(), "image/png")}


async def good_client(client: httpx.AsyncClient, url: str, body: tuple[bytes, str],
                      deadline: float, row: Row) -> None:
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        try:
            response = await client.post(f"{url}/v1/recognize", content=body[0],
                                         headers={"content-type": body[1]})
            ok = response.status_code == 200 and len(response.json()["faces"]) == 1
        except httpx.HTTPError:
            ok = False
        row.latencies_ms.append((time.perf_counter() - start) * 1000)
        row.requests += 1
        row.errors += not ok


async def hostile_client(url: str, kind: str, body: tuple[bytes, str], deadline: float,
                         outcomes: Counter) -> None:
    """Its own connection, apart from the good clients' pool."""
    async with httpx.AsyncClient(timeout=60) as client:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                response = await client.post(f"{url}/v1/recognize", content=body[0],
                                             headers={"content-type": body[1]})
                outcomes[str(response.status_code)] += 1
            except httpx.HTTPError as e:
                outcomes[type(e).__name__] += 1
            await asyncio.sleep(max(0.0, HOSTILE_PERIOD_S - (time.perf_counter() - start)))


async def load(url: str, row: Row, bodies: dict, hostile: bool) -> None:
    deadline = time.perf_counter() + row.seconds
    limits = httpx.Limits(max_connections=row.clients, max_keepalive_connections=row.clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        tasks = [good_client(client, url, bodies["good"], deadline, row)
                 for _ in range(row.clients)]
        outcomes: dict[str, Counter] = {}
        if hostile:
            for kind in ("oversize", "not-image", "bomb"):
                outcomes[kind] = Counter()
                tasks.append(hostile_client(url, kind, bodies[kind], deadline, outcomes[kind]))
        await asyncio.gather(*tasks)
    row.hostile = {kind: dict(counts) for kind, counts in outcomes.items()}


def run_row(url: str, pid: int, workers: int, clients: int, seconds: float, bodies: dict,
            hostile: bool = False) -> Row:
    row = Row(workers, clients, seconds)
    row.rss_before_mb = tree_memory_mb(pid)[0]
    asyncio.run(load(url, row, bodies, hostile))
    row.rss_after_mb, row.pss_after_mb = tree_memory_mb(pid)
    summary = row.summary()
    print(json.dumps(summary), flush=True)
    return row


def warm_up(url: str, workers: int, bodies: dict) -> None:
    """A few requests per worker: each loads its face detector on its first one."""
    warm = Row(workers, 2 * workers, 3.0)
    asyncio.run(load(url, warm, bodies, hostile=False))


def markdown(result: dict) -> str:
    lines = [f"# fercnn serve under load\n\n{result['notes']}\n",
             "| workers | clients | requests/s | p50 ms | p95 ms | p99 ms | requests | errors "
             "| server RSS before MB | after MB | PSS after MB |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['workers']} | {r['clients']} | {r['requests_per_s']} | "
                     f"{r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {r['requests']} | "
                     f"{r['errors']} | {r['rss_before_mb']} | {r['rss_after_mb']} | "
                     f"{r['pss_after_mb']} |")
    h = result["hostile"]
    lines += ["", f"With hostile clients: {h['workers']} worker(s), {h['clients']} good clients "
              f"and one hostile client of each kind (at most {1 / HOSTILE_PERIOD_S:.0f} "
              "requests/s each) for "
              f"{h['seconds']:g} s: {h['requests']} good requests, {h['errors']} errors, "
              f"{h['requests_per_s']} requests/s, p50 {h['p50_ms']} ms, p95 {h['p95_ms']} ms, "
              f"p99 {h['p99_ms']} ms; server RSS {h['rss_before_mb']} -> "
              f"{h['rss_after_mb']} MB.", "", "| hostile request | answers |", "| --- | --- |"]
    for kind, counts in h["hostile"].items():
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
        lines.append(f"| {kind} | {answers} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per row")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--hostile-seconds", type=float, default=15.0)
    args = parser.parse_args()
    bodies = payloads()
    load_before = load_average()
    rows, hostile = [], None
    for workers in args.workers:
        with server(workers) as (url, pid):
            warm_up(url, workers, bodies)
            rows += [run_row(url, pid, workers, k, args.seconds, bodies) for k in args.clients]
            if workers == args.workers[0]:
                hostile = run_row(url, pid, workers, 4, args.hostile_seconds, bodies, True)
    cores = os.cpu_count()
    notes = (f"Host: {cpu_description()}, {cores} cores, Python {platform.python_version()}; "
             f"server and clients on the same machine, which other jobs shared during the "
             f"run (load average {load_before} before it, {load_average()} after), so "
             f"absolute figures are noisy and a floor. Each row: {args.seconds:g} s "
             "of K clients posting the bundled 512x512 portrait as a JPEG "
             f"({len(bodies['good'][0]) // 1024} kB) back to back, default model, default "
             "limits (16 requests in progress per worker, 20 MB bodies, 50 megapixels). "
             "Latency is the client's, request sent to answer read. RSS: all the server's "
             "processes (uvicorn's supervisor with --workers, the workers), from /proc; it "
             "counts the libraries they share once per process, PSS shares them out.")
    result = {"cpu": cpu_description(), "cores": cores, "python": platform.python_version(),
              "load_average_before": load_before,
              "notes": notes, "rows": [r.summary() for r in rows],
              "hostile": hostile.summary() if hostile else None}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serve_load.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "serve_load.md").write_text(markdown(result))
    print(f"wrote {RESULTS / 'serve_load.md'}")


if __name__ == "__main__":
    main()
