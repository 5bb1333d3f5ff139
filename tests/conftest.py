"""Shared fixtures: a private cache folder, synthetic FER-2013 data, and the real data if given.

Real-data tests read ``FERCNN_REAL_DATA`` (a folder holding ``fer2013.csv.xz`` and
``fer2013new.csv``); ``.ci/run`` sets it to ``../shared/data`` when that exists.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/NAME.py`` imported as a module, as ``python benchmarks/NAME.py`` would see
    it: with ``benchmarks/`` on the path for the scripts that import each other."""
    folder = str(REPO / "benchmarks")
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Every test session parses into its own cache, never the user's."""
    os.environ["FERCNN_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.pop("FERCNN_DATA", None)


def make_rows(per_split: dict[str, int], seed: int = 0) -> list[tuple[int, np.ndarray, str]]:
    """Random (label, 48x48 uint8 image, usage) rows; each class leaves a faint mark so a model
    can learn something, and every class occurs in every split."""
    rng = np.random.default_rng(seed)
    rows = []
    for usage, n in per_split.items():
        for i in range(n):
            label = i % 7
            image = rng.integers(0, 256, (48, 48)).astype(np.int32)
            image[label * 6:label * 6 + 6, :] = 255
            rows.append((label, image.astype(np.uint8), usage))
    return rows


def csv_text(rows) -> str:
    lines = ["emotion,pixels,Usage"]
    lines += [f"{label},{' '.join(map(str, image.ravel()))},{usage}"
              for label, image, usage in rows]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def synthetic_rows():
    return make_rows({"Training": 140, "PublicTest": 35, "PrivateTest": 35})


@pytest.fixture(scope="session")
def synthetic_csv(tmp_path_factory, synthetic_rows) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "fer2013.csv"
    path.write_text(csv_text(synthetic_rows))
    return path


@pytest.fixture(scope="session")
def real_data() -> Path:
    folder = os.environ.get("FERCNN_REAL_DATA")
    if not folder or not (Path(folder) / "fer2013.csv.xz").exists():
        pytest.skip("real FER-2013 not available: set FERCNN_REAL_DATA to the folder with "
                    "fer2013.csv.xz (CI sets it to ../shared/data)")
    return Path(folder)


def run_cli(*args: str, env: dict | None = None, timeout: float = 600):
    """Run ``python -m fercnn ARGS`` in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "fercnn", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=REPO)


def run_cli_without(blocked: tuple[str, ...], *args: str, timeout: float = 120):
    """Run the CLI in a fresh interpreter where importing any of ``blocked`` (top-level package
    names) fails, as on an install without them; afterwards none of them may be loaded."""
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(name + " is blocked for this test")
sys.meta_path.insert(0, Block())
from fercnn.cli import main
code = main({[str(a) for a in args]!r})
assert not {{name.split(".")[0] for name in sys.modules}} & set({blocked!r})
sys.exit(code)
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=timeout)


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
