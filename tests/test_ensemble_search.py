"""benchmarks/ensemble_search.py: every subset scored on PublicTest, matching `fercnn evaluate`."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import REPO, assert_one_line_error, csv_text, make_rows, run_cli
from .test_train import write_config, write_ferplus_votes


def search(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "ensemble_search.py"),
                           *map(str, args)], capture_output=True, text=True, timeout=300)


def scores(stdout: str) -> dict[str, float]:
    """{'a + b': 0.5, ...} from the search's lines '50.00%  a + b'."""
    lines = [line.split("  ", 1) for line in stdout.splitlines()[1:]]
    return {members: float(accuracy.rstrip("%")) / 100 for accuracy, members in lines}


def public_accuracy(*runs, extra=()) -> float:
    result = run_cli("evaluate", *runs, "--split", "PublicTest", "--json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["accuracy"]


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
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("PublicTest accuracy (FER-2013 labels), best first:")
    found = scores(result.stdout)
    assert set(found) == {"a", "b", "a + b"}
    assert list(found.values()) == sorted(found.values(), reverse=True)
    env = ["--data", str(data)]
    assert abs(found["a"] - public_accuracy(runs / "a", extra=env)) < 1e-4
    assert abs(found["a + b"] - public_accuracy(runs / "a", runs / "b", extra=env)) < 1e-4

    with_ferplus = search("--runs", runs, "a", "b", "--data", data, "--ferplus", ferplus)
    assert with_ferplus.returncode == 0, with_ferplus.stderr
    assert "(FER+ plurality labels)" in with_ferplus.stdout.splitlines()[0]
    on_ferplus = scores(with_ferplus.stdout)
    assert abs(on_ferplus["b"] - public_accuracy(
        runs / "b", extra=[*env, "--ferplus", str(ferplus)])) < 1e-4
    assert on_ferplus != found
    rule = ["--ferplus", str(ferplus), "--ferplus-rule", "majority"]
    with_rule = search("--runs", runs, "a", "b", "--data", data, *rule)
    assert "(FER+ majority labels)" in with_rule.stdout.splitlines()[0], with_rule.stderr
    assert abs(scores(with_rule.stdout)["a + b"] - public_accuracy(
        runs / "a", runs / "b", extra=[*env, *rule])) < 1e-4

    exported = tmp_path / "a.onnx"  # an ONNX model is a member too, as in `fercnn evaluate`
    assert run_cli("export", runs / "a", "--out", exported).returncode == 0
    with_onnx = search("--runs", runs, exported, "b", "--data", data)
    assert with_onnx.returncode == 0, with_onnx.stderr
    assert with_onnx.stdout.startswith("PublicTest accuracy (FER-2013 labels)")
    mixed = scores(with_onnx.stdout)
    assert set(mixed) == {str(exported), "b", f"{exported} + b"}
    assert abs(mixed[f"{exported} + b"] - public_accuracy(exported, runs / "b", extra=env)) < 1e-4

    assert_one_line_error(search("--runs", runs, "a", "missing", "--data", data), "missing")
