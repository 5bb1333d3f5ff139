"""The package's shape: two layers (recognition never needs torch) and no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "src" / "fercnn"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    """The package a module's relative imports start from."""
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """Every fercnn module that ``path`` imports, at the top or inside a function.
    ``from X import Y`` counts as importing X.Y when that is a module, else X."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package_of(path).split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) - {module_name(p)} for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "fercnn.training.loop" in graph and "fercnn.recognition.recognizer" in graph
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    """The check above could not fail if the finder missed cycles: it finds one here."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_imports_inside_functions():
    graph = import_graph()
    # fercnn.evaluate imports the training side only inside a function, for checkpoints
    assert "fercnn.training.evaluate" in graph["fercnn.evaluate"]
    assert "fercnn.models._registry" in graph["fercnn.models.vgg"]


def test_the_recognition_layer_and_the_server_never_import_torch_or_training():
    paths = sorted((PACKAGE / "recognition").rglob("*.py")) + sorted(
        (PACKAGE / "serve").rglob("*.py"))
    assert any(p.parent.name == "serve" for p in paths)
    for path in paths:
        tree = ast.parse(path.read_text(), str(path))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] == "torch"}, path
        assert not {n for n in names if n.lstrip(".").split(".")[0] in ("training", "models")
                    or n.startswith("fercnn.training")}, path


# The start of a script run in a fresh interpreter where importing torch fails, then every
# module of one package imported (format with the package's name)
WITHOUT_TORCH = """
import importlib, pkgutil, sys, warnings
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError(name + " is blocked for this test")
sys.meta_path.insert(0, Block())
import {package} as layer
for info in pkgutil.walk_packages(layer.__path__, "{package}."):
    importlib.import_module(info.name)
"""


def run_without_torch(package: str, code: str) -> str:
    """What ``code`` prints after :data:`WITHOUT_TORCH` has imported ``package``, asserting it
    ran and never loaded torch."""
    code = WITHOUT_TORCH.format(package=package) + code + (
        '\nassert "torch" not in {name.split(".")[0] for name in sys.modules}\n')
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_recognition_runs_on_the_bundled_photo_with_torch_unimportable():
    """Every module of the recognition layer imports, and the default Recognizer names the
    astronaut's emotion, in an interpreter where importing torch fails."""
    printed = run_without_torch("fercnn.recognition", """
from fercnn import EMOTIONS, Recognizer
from fercnn.recognition import DEMO_PHOTO
faces = Recognizer().predict(DEMO_PHOTO)
assert len(faces) == 1 and faces[0].emotion in EMOTIONS, faces
print(faces[0].emotion)
""")
    assert printed == "happy"


def test_the_server_answers_with_torch_unimportable():
    """Every module of ``fercnn.serve`` imports, and a request through the app names the
    astronaut's emotion, in an interpreter where importing torch fails."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    printed = run_without_torch("fercnn.serve", """
warnings.filterwarnings("ignore", "Using `httpx`")
from fastapi.testclient import TestClient
from fercnn.recognition import DEMO_PHOTO
from fercnn.serve.app import create_app
answer = TestClient(create_app()).post("/v1/recognize", content=DEMO_PHOTO.read_bytes(),
                                       headers={"content-type": "image/png"}).json()
print(answer["faces"][0]["emotion"])
""")
    assert printed == "happy"
