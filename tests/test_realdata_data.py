"""The data layer on the real FER-2013 and FER+ files (skipped without FERCNN_REAL_DATA).

Every expected number comes from ../shared/data/README.md, measured on these exact files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fercnn.data import apply_ferplus, load_dataset, load_ferplus
from fercnn.labels import EMOTIONS, SPLITS
from fercnn.recognition.priors import FER2013_TRAINING

from .conftest import run_cli

pytestmark = pytest.mark.realdata

# README: rows and per-class counts of each split, classes in EMOTIONS order
README_SPLITS = {
    "Training": (28709, [3995, 436, 4097, 7215, 4830, 3171, 4965]),
    "PublicTest": (3589, [467, 56, 496, 895, 653, 415, 607]),
    "PrivateTest": (3589, [491, 55, 528, 879, 594, 416, 626]),
}
# README: FER+ majority (first column on ties), in the file's column order
README_FERPLUS_ARGMAX = [12906, 9355, 4462, 4371, 3111, 248, 819, 216, 222, 177]
# FER+ column -> FER-2013 class: neutral happiness surprise sadness anger disgust fear
FERPLUS_TO_CLASS = [6, 3, 5, 4, 0, 1, 2]


@pytest.fixture(scope="module")
def real_dataset(real_data):
    """The real CSV, parsed once for this module (later loads, CLI ones too, hit the cache)."""
    return load_dataset(real_data / "fer2013.csv.xz")


def test_real_info_json(real_data, real_dataset):
    result = run_cli("info", real_data / "fer2013.csv.xz", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["total"] == 35887
    assert info["distinct_images"] == 34034
    for split, (total, classes) in README_SPLITS.items():
        part = info["splits"][split]
        assert part["total"] == total, split
        assert part["classes"] == dict(zip(EMOTIONS, classes, strict=True)), split
    assert info["splits"]["Training"]["in_training"] is None
    assert info["splits"]["PublicTest"]["in_training"] == 280
    assert info["splits"]["PrivateTest"]["in_training"] == 288
    # the in-process load agrees with the CLI
    assert real_dataset.summary() == info
    assert real_dataset.images.shape == (35887, 48, 48)
    # README: rows 0-28,708 Training, 28,709-32,297 PublicTest, the rest PrivateTest
    assert np.array_equal(real_dataset.usage,
                          np.repeat(np.arange(3, dtype=np.uint8), [28709, 3589, 3589]))


def test_the_photos_priors_fer2013_counts_are_the_training_splits(real_dataset):
    training = real_dataset.split("Training").labels
    assert [FER2013_TRAINING[e] for e in EMOTIONS] == np.bincount(training, minlength=7).tolist()


def test_real_export_round_trip(real_data, real_dataset, tmp_path):
    out = tmp_path / "fer2013-folders"
    result = run_cli("data", "export-folders", real_data / "fer2013.csv.xz", out)
    assert result.returncode == 0, result.stderr
    assert "wrote 35887 PNG images" in result.stdout
    exported = load_dataset(out)
    assert np.array_equal(exported.images, real_dataset.images)
    assert np.array_equal(exported.labels, real_dataset.labels)
    assert np.array_equal(exported.usage, real_dataset.usage)
    assert np.array_equal(exported.in_training, real_dataset.in_training)


def test_real_ferplus(real_data, real_dataset):
    ferplus = load_ferplus(real_data / "fer2013new.csv")
    assert ferplus.votes.shape == (35887, 10)
    assert np.array_equal(ferplus.usage, real_dataset.usage)
    sums = ferplus.votes.sum(axis=1)
    assert np.flatnonzero(sums != 10).tolist() == [10435] and sums[10435] == 9
    top = np.argmax(ferplus.votes, axis=1)
    assert np.bincount(top, minlength=10).tolist() == README_FERPLUS_ARGMAX

    relabelled = apply_ferplus(real_dataset, ferplus)
    keep = top < 7
    assert keep.sum() == 35887 - 216 - 222 - 177
    assert len(relabelled) == keep.sum()
    assert np.array_equal(relabelled.images, real_dataset.images[keep])
    assert np.array_equal(relabelled.usage, real_dataset.usage[keep])
    assert np.array_equal(relabelled.labels, np.array(FERPLUS_TO_CLASS)[top[keep]])
    counts = np.bincount(relabelled.labels, minlength=len(EMOTIONS))
    assert counts.tolist() == [README_FERPLUS_ARGMAX[FERPLUS_TO_CLASS.index(c)]
                               for c in range(len(EMOTIONS))]
    assert relabelled.soft_labels.shape == (len(relabelled), 7)
    np.testing.assert_allclose(relabelled.soft_labels.sum(axis=1), 1.0, atol=1e-5)
    for code, split in enumerate(SPLITS):
        assert len(relabelled.split(split)) == int((keep & (real_dataset.usage == code)).sum())


def test_real_ferplus_authors_majority(real_data, real_dataset):
    """The FER+ authors' test protocol, counted here by a plain loop over the votes: drop the
    single votes, keep a face whose top column then has over half of the rest."""
    ferplus = load_ferplus(real_data / "fer2013new.csv")
    expected = []
    for row in ferplus.votes.tolist():
        kept = [v if v > 1 else 0 for v in row]
        top = kept.index(max(kept))
        clear = max(kept) > sum(kept) / 2
        expected.append(-1 if not clear or top > 7 else 7 if top == 7 else FERPLUS_TO_CLASS[top])
    authors = ferplus.authors_majority
    assert authors.tolist() == expected
    # per split: faces scored under the rule (seven emotions, contempt)
    counts = {}
    for code, split in enumerate(SPLITS):
        in_split = authors[ferplus.usage == code]
        counts[split] = (int(((in_split >= 0) & (in_split < 7)).sum()), int((in_split == 7).sum()))
    assert counts == {"Training": (24941, 119), "PublicTest": (3186, 13),
                      "PrivateTest": (3137, 16)}
    relabelled = apply_ferplus(real_dataset, ferplus, "majority")
    assert len(relabelled.split("PrivateTest")) == 3137
    plurality = ferplus.plurality
    both = (authors >= 0) & (authors < 7)
    assert np.array_equal(authors[both], plurality[both])  # a clear majority is the plurality

