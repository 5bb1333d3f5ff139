"""benchmarks/ensemble_search.py: every subset scored on PublicTest, matching `fercnn evaluate`.

The search and the evaluations run in this process: as subprocesses, each would import torch
again (about 4 s on a slow 2-core host), and the suite has a time budget.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from unittest import mock

from fercnn.evaluate import evaluate
from fercnn.training.export import export_onnx

from .conftest import REPO, assert_one_line_error, csv_text, load_benchmark, make_rows, run_cli
from .test_train import write_config, write_ferplus_votes

SCRIPT = REPO / "benchmarks" / "ensemble_search.py"


def search(*args) -> str:
    """What the search prints, run in this process."""
    module = load_benchmark("ensemble_search")
    printed = io.StringIO()
    with mock.patch.object(sys, "argv", [str(SCRIPT), *map(str, args)]), \
            contextlib.redirect_stdout(printed):
        module.main()
    return printed.getvalue()


def scores(stdout: str) -> dict[str, float]:
    """{'a + b': 0.5, ...} from the search's lines '50.00%  a + b'."""
    lines = [line.split("  ", 1) for line in stdout.splitlines()[1:]]
    return {members: float(accuracy.rstrip("%")) / 100 for accuracy, members in lines}


def public_accuracy(*runs, data, **ferplus) -> float:
    return evaluate([str(r) for r in runs], str(data), split="PublicTest", **ferplus)["accuracy"]


def test_every_subset_matches_evaluate_on_public_test(tmp_path):
    rows = make_rows({"Training": 300, "PublicTest": 70, "PrivateTest": 70})
    data = tmp_path / "fer.csv"
    data.write_text(csv_text(rows))
    relabelled = [((label + 1) % 7 if i % 3 == 0 else label, pixels, usage)
                  for i, (label, pixels, usage) in enumerate(rows)]  # FER+ disagrees on a third
    ferplus = write_ferplus_votes(tmp_path / "fer2013new.csv", relabelled)
    runs = tmp_path / "runs"
    for name, model in (("a", "shallow"), ("b", "improved")):
        config = write_config(tmp_path, epochs=1, name=name, extra=f"model: {model}\n")
        trained = run_cli("train", "--config", config, "--data", data, "--limit", "96",
                          "--out", runs / name)
        assert trained.returncode == 0, trained.stderr

    result = search("--runs", runs, "a", "b", "--data", data)
    assert result.startswith("PublicTest accuracy (FER-2013 labels), best first:")
    found = scores(result)
    assert set(found) == {"a", "b", "a + b"}
    assert list(found.values()) == sorted(found.values(), reverse=True)
    assert abs(found["a"] - public_accuracy(runs / "a", data=data)) < 1e-4
    assert abs(found["a + b"] - public_accuracy(runs / "a", runs / "b", data=data)) < 1e-4

    with_ferplus = search("--runs", runs, "a", "b", "--data", data, "--ferplus", ferplus)
    assert "(FER+ plurality labels)" in with_ferplus.splitlines()[0]
    on_ferplus = scores(with_ferplus)
    assert abs(on_ferplus["b"] - public_accuracy(runs / "b", data=data,
                                                 ferplus=str(ferplus))) < 1e-4
    assert on_ferplus != found
    with_rule = search("--runs", runs, "a", "b", "--data", data, "--ferplus", ferplus,
                       "--ferplus-rule", "majority")
    assert "(FER+ majority labels)" in with_rule.splitlines()[0]
    assert abs(scores(with_rule)["a + b"] - public_accuracy(
        runs / "a", runs / "b", data=data, ferplus=str(ferplus), ferplus_rule="majority")) < 1e-4

    exported = tmp_path / "a.onnx"  # an ONNX model is a member too, as in `fercnn evaluate`
    export_onnx(runs / "a", exported, data=str(data))
    with_onnx = search("--runs", runs, exported, "b", "--data", data)
    assert with_onnx.startswith("PublicTest accuracy (FER-2013 labels)")
    mixed = scores(with_onnx)
    assert set(mixed) == {str(exported), "b", f"{exported} + b"}
    assert abs(mixed[f"{exported} + b"] - public_accuracy(exported, runs / "b", data=data)) < 1e-4

    missing = subprocess.run([sys.executable, str(SCRIPT), "--runs", str(runs), "a", "missing",
                              "--data", str(data)], capture_output=True, text=True, timeout=300)
    assert_one_line_error(missing, "missing")
