"""scripts/device_data.py and scripts/device_train.py: the path to a lent GPU, rehearsed on CPU.

A GPU is lent to few sessions, so these tests keep the scripts working between loans: the
packing is lossless, PrivateTest never travels, and one tiny run goes the whole way from the
packed file to an int8 ONNX model and its archive.
"""

from __future__ import annotations

import io
import json
import lzma
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from fercnn.data import load_dataset
from fercnn.errors import FercnnError
from fercnn.evaluate import evaluate
from fercnn.recognition import Recognizer

from .conftest import REPO, assert_one_line_error, csv_text, make_rows, run_cli
from .test_train import write_ferplus_votes

sys.path.insert(0, str(REPO / "scripts"))
import device_data  # noqa: E402


def test_residuals_invert_exactly():
    rng = np.random.default_rng(3)
    images = np.concatenate([
        rng.integers(0, 256, (5, 48, 48)),  # noise: every residual wraps around somewhere
        np.full((1, 48, 48), 255), np.zeros((1, 48, 48)),
        np.tile(np.arange(48) * 5, (2, 48, 1)),  # ramps: the predictor is exact
    ]).astype(np.uint8)
    assert np.array_equal(device_data.reconstruct(device_data.residuals(images)), images)
    ramp = device_data.residuals(images[-1:])
    assert (ramp[:, 1:, 1:] == 0).all()


@pytest.fixture
def packed(tmp_path, synthetic_csv, synthetic_rows):
    ferplus = write_ferplus_votes(tmp_path / "votes.csv", synthetic_rows)
    out = tmp_path / "pack.xz"
    summary = device_data.pack(str(synthetic_csv), out, str(ferplus))
    assert summary["rows"] == 175  # Training 140 + PublicTest 35; PrivateTest stays here
    return out


def test_pack_and_unpack_keep_training_and_public_test_only(packed, tmp_path, synthetic_csv):
    csv = tmp_path / "unpacked" / "fer2013.csv"
    assert device_data.unpack(packed, csv) == {"rows": 175, "ferplus": True}
    original, unpacked = load_dataset(synthetic_csv), load_dataset(csv)
    assert np.array_equal(unpacked.images, original.images[:175])
    assert np.array_equal(unpacked.labels, original.labels[:175])
    assert np.array_equal(unpacked.usage, original.usage[:175])
    assert not unpacked.split_mask("PrivateTest").any()
    relabelled = load_dataset(csv, ferplus=csv.parent / "fer2013new.csv")  # joins by position
    assert len(relabelled) == 175
    result = run_cli("evaluate", "default", "--data", csv, "--split", "PrivateTest")
    assert_one_line_error(result, "no PrivateTest images")


def test_unpack_refuses_a_damaged_or_foreign_file(packed, tmp_path):
    stored = dict(np.load(io.BytesIO(lzma.decompress(packed.read_bytes()))))
    stored["residuals"][0, 10, 10] ^= 1
    damaged = tmp_path / "damaged.xz"
    buffer = io.BytesIO()
    np.savez(buffer, **stored)
    damaged.write_bytes(lzma.compress(buffer.getvalue()))
    with pytest.raises(FercnnError, match="checksum"):
        device_data.unpack(damaged, tmp_path / "x.csv")
    foreign = tmp_path / "foreign.xz"
    foreign.write_bytes(b"not xz")
    with pytest.raises(FercnnError, match="not a packed"):
        device_data.unpack(foreign, tmp_path / "x.csv")
    buffer = io.BytesIO()
    np.savez(buffer, images=np.zeros((1, 48, 48), np.uint8))  # an npz, but not ours
    foreign.write_bytes(lzma.compress(buffer.getvalue()))
    with pytest.raises(FercnnError, match="no labels, residuals, sha256, usage"):
        device_data.unpack(foreign, tmp_path / "x.csv")


def pack_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / "device_data.py"), "pack",
                           *map(str, args)], capture_output=True, text=True)


def test_pack_mistakes_are_one_line(tmp_path, synthetic_csv):
    shuffled = tmp_path / "fer2013.csv"
    shuffled.write_text(csv_text(make_rows({"Training": 14, "PrivateTest": 7, "PublicTest": 7})))
    assert_one_line_error(pack_cli(shuffled, tmp_path / "p.xz"), "must precede PrivateTest")
    assert_one_line_error(pack_cli(synthetic_csv, tmp_path / "p.xz", "--ferplus",
                                   tmp_path / "missing.csv"), "missing.csv: no such file")
    assert_one_line_error(pack_cli(tmp_path / "none.csv", tmp_path / "p.xz"), "none.csv")


def test_device_train_rehearsal_on_cpu(packed, tmp_path, synthetic_csv):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "device_train.py"), str(packed),
         "configs/seed-shallow.yaml:3", "--device", "cpu", "--minutes", "5",
         "--train-args", "--epochs 1 --limit 64", "--work", str(tmp_path / "work"),
         "--out", str(out)], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["runs.tar.gz", "seed-shallow-seed3.onnx"]
    with tarfile.open(out / "runs.tar.gz") as tar:
        summary = json.load(tar.extractfile("summary.json"))
        names = set(tar.getnames())
        log = tar.extractfile("seed-shallow-seed3/train.log").read().decode()
    assert "1 of 1 epochs fit" in log  # each run was given the time left as --minutes
    run = summary["seed-shallow-seed3"]
    assert run["finished"] and run["exported"] and run["epochs_run"] == 1
    assert {"seed-shallow-seed3/history.csv", "seed-shallow-seed3/train.log"} <= names
    model = out / "seed-shallow-seed3.onnx"
    metadata = Recognizer(model).metadata
    assert metadata["quantization"] == "int8" and metadata["private_test_accuracy"] is None
    scored = evaluate([model], str(synthetic_csv), split="PrivateTest")
    assert scored["images"] == 35  # scored here, where PrivateTest is


def test_pack_says_what_travels_from_a_checkout(tmp_path):
    """The device tool sends the checkout's tracked and unignored files with the pack."""
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    plain.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("/.device/\n")
    (repo / "kept.bin").write_bytes(b"x" * 1000)
    (repo / ".device").mkdir()
    (repo / ".device" / "old.xz").write_bytes(b"y" * 5000)  # ignored: does not travel
    assert device_data.checkout_bytes(repo / ".device") == 1000 + len("/.device/\n")
    assert device_data.checkout_bytes(plain) is None
