"""The host a benchmark ran on, named the same way in every result: results from different
hosts are never compared (the README's speed section says which host each figure is from)."""

from __future__ import annotations

import json
import platform
from pathlib import Path


def cpu_description() -> str:
    """The processor's name and the matrix extensions that decide bf16 speed (Linux only)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.startswith("model name")), platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), []))
    found = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
             if f in flags]
    return f"{name} ({', '.join(found) or 'no AVX2'})"


RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, tag: str | None, result: dict, lines: list[str]) -> None:
    """``benchmarks/results/NAME[-TAG].{json,md}``: each host's figures in files of their own
    (the tag names the host), so a run on one host never overwrites another's."""
    stem = name + (f"-{tag}" if tag else "")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
