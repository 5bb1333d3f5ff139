"""The data layer on synthetic data: the FER-2013 CSV reader and its cache, the CLI's handling
of bad input, ``info``, duplicates, image folders, ``export-folders`` and FER+ labels."""

from __future__ import annotations

import gzip
import json
import lzma
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fercnn.data import apply_ferplus, load_dataset, load_ferplus
from fercnn.data import fer2013 as fer2013_module
from fercnn.data import folders as folders_module
from fercnn.data.ferplus import CONTEMPT, FerPlusLabels
from fercnn.errors import FercnnError
from fercnn.labels import EMOTIONS, SPLITS

from .conftest import assert_one_line_error, csv_text, make_rows, run_cli, run_cli_without

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def expected_counts(rows) -> dict[str, dict]:
    """Per split: total and per-class counts, computed straight from the rows."""
    out = {}
    for split in SPLITS:
        labels = [label for label, _, usage in rows if usage == split]
        counts = Counter(labels)
        out[split] = {"total": len(labels),
                      "classes": {e: counts.get(i, 0) for i, e in enumerate(EMOTIONS)}}
    return out


def assert_same_dataset(a, b) -> None:
    assert np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.usage, b.usage)


# --- parsing the CSV ------------------------------------------------------------------------


def test_load_csv_matches_rows(synthetic_csv, synthetic_rows):
    dataset = load_dataset(synthetic_csv)
    n = len(synthetic_rows)
    assert len(dataset) == n
    assert dataset.images.shape == (n, 48, 48)
    assert dataset.images.dtype == np.uint8
    assert np.array_equal(dataset.images, np.stack([img for _, img, _ in synthetic_rows]))
    assert dataset.labels.tolist() == [label for label, _, _ in synthetic_rows]
    assert [SPLITS[u] for u in dataset.usage] == [usage for _, _, usage in synthetic_rows]
    assert dataset.soft_labels is None
    assert dataset.source == str(synthetic_csv)


def test_split_sizes(synthetic_csv, synthetic_rows):
    dataset = load_dataset(synthetic_csv)
    sizes = {name: len(dataset.split(name)) for name in SPLITS}
    assert sizes == {"Training": 140, "PublicTest": 35, "PrivateTest": 35}
    test = dataset.split("PrivateTest")
    rows = [r for r in synthetic_rows if r[2] == "PrivateTest"]
    assert test.name == "PrivateTest"
    assert test.images.shape == (35, 48, 48)
    assert np.array_equal(test.images, np.stack([img for _, img, _ in rows]))
    assert test.labels.tolist() == [label for label, _, _ in rows]
    with pytest.raises(FercnnError, match="unknown split"):
        dataset.split("Validation")


def test_cache_is_written_and_reused(synthetic_csv, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FERCNN_CACHE", str(cache))
    first = load_dataset(synthetic_csv)
    assert len(list(cache.glob("*.npz"))) == 1

    def no_parsing(*args, **kwargs):
        raise AssertionError("parsed again although the cache holds this file")

    monkeypatch.setattr(fer2013_module, "parse_fer2013", no_parsing)
    second = load_dataset(synthetic_csv)
    assert_same_dataset(first, second)
    assert second.images.dtype == np.uint8 and second.labels.dtype == np.int64
    assert len(list(cache.glob("*.npz"))) == 1


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_cache_file_is_reparsed(synthetic_csv, tmp_path, monkeypatch, damage):
    cache = tmp_path / "cache"
    monkeypatch.setenv("FERCNN_CACHE", str(cache))
    first = load_dataset(synthetic_csv)
    (npz,) = cache.glob("*.npz")
    npz.write_bytes(npz.read_bytes()[:1000] if damage == "truncated" else b"")
    assert_same_dataset(first, load_dataset(synthetic_csv))


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".xz", lzma.compress)])
def test_compressed_csv_loads_identically(synthetic_csv, tmp_path, suffix, compress):
    packed = tmp_path / f"fer2013.csv{suffix}"
    packed.write_bytes(compress(synthetic_csv.read_bytes()))
    assert_same_dataset(load_dataset(packed), load_dataset(synthetic_csv))


def test_crlf_and_bom_are_accepted(synthetic_csv, tmp_path):
    other = tmp_path / "windows.csv"
    other.write_bytes(b"\xef\xbb\xbf" + synthetic_csv.read_bytes().replace(b"\n", b"\r\n"))
    assert_same_dataset(load_dataset(other), load_dataset(synthetic_csv))


# --- bad CSV input through the CLI -----------------------------------------------------------

SMALL_ROWS = make_rows({"Training": 7, "PublicTest": 3, "PrivateTest": 3}, seed=1)


def _pixels(n: int, value: str = "1") -> str:
    return " ".join([value] * n)


# (case, 1-based line to replace, its new text, text the one-line error must contain)
BAD_CSV_CASES = [
    ("short-row", 7, f"3,{_pixels(2303)},Training", ["line 7", "2304", "2303"]),
    ("long-row", 5, f"3,{_pixels(2305)},Training", ["line 5", "2305"]),
    ("empty-pixels", 4, "3,,Training", ["line 4", "found 0"]),
    ("header", 1, "emotion,pixel,Usage", ["line 1", "header"]),
    ("label-7", 3, f"7,{_pixels(2304)},Training", ["line 3", "0-6"]),
    ("label-negative", 3, f"-1,{_pixels(2304)},Training", ["line 3", "0-6"]),
    ("usage", 4, f"2,{_pixels(2304)},Validation", ["line 4", "Usage", "Validation"]),
    ("pixel-256", 5, f"2,{_pixels(2303)} 256,Training", ["line 5", "0..255"]),
    ("pixel-1000", 6, f"2,1000 {_pixels(2303)},Training", ["line 6", "0..255"]),
    ("pixel-word", 6, f"2,{_pixels(1000)} abc {_pixels(1303)},Training", ["line 6", "'a'"]),
    ("pixel-negative", 6, f"2,-1 {_pixels(2303)},Training", ["line 6", "'-'"]),
    ("two-fields", 8, f"2,{_pixels(2304)}", ["line 8", "3 fields", "found 2"]),
    ("four-fields", 9, f"2,{_pixels(2304)},Training,x", ["line 9", "found 4"]),
]


@pytest.mark.parametrize("case, line, text, needles", BAD_CSV_CASES,
                         ids=[c[0] for c in BAD_CSV_CASES])
def test_bad_csv_is_one_line_error(tmp_path, case, line, text, needles):
    lines = csv_text(SMALL_ROWS).splitlines()
    lines[line - 1] = text
    path = tmp_path / f"{case}.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FercnnError) as caught:
        load_dataset(path)
    for needle in needles:
        assert needle in str(caught.value)
    assert_one_line_error(run_cli("info", path), str(path), *needles)


def test_blank_lines_keep_line_numbers(tmp_path):
    lines = csv_text(SMALL_ROWS).splitlines()
    lines.insert(2, "")  # a blank line 3 pushes the old line 7 to line 8
    lines[7] = f"3,{_pixels(2303)},Training"
    path = tmp_path / "blank.csv"
    path.write_text("\n".join(lines) + "\n")
    assert_one_line_error(run_cli("info", path), str(path), "line 8")


def test_header_only_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("emotion,pixels,Usage\n")
    assert_one_line_error(run_cli("info", path), str(path), "no data rows")


def test_missing_file_is_one_line_error(tmp_path):
    path = tmp_path / "nowhere" / "fer2013.csv"
    with pytest.raises(FercnnError, match="no such file"):
        load_dataset(path)
    assert_one_line_error(run_cli("info", path), str(path), "no such file")


def test_corrupt_xz_is_one_line_error(tmp_path):
    path = tmp_path / "fer2013.csv.xz"
    path.write_bytes(b"\xfd7zXZ\x00" + b"not really xz" * 20)
    assert_one_line_error(run_cli("info", path), str(path), "cannot read")


# --- info ---------------------------------------------------------------------------------------


def test_info_json_counts(synthetic_csv, synthetic_rows):
    result = run_cli("info", synthetic_csv, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    expected = expected_counts(synthetic_rows)
    assert set(info["splits"]) == set(SPLITS)
    for split in SPLITS:
        part = info["splits"][split]
        assert list(part["classes"]) == list(EMOTIONS)
        assert part["total"] == expected[split]["total"]
        assert part["classes"] == expected[split]["classes"]
    assert info["total"] == len(synthetic_rows)
    assert info["distinct_images"] == len(synthetic_rows)
    assert info["splits"]["Training"]["in_training"] is None
    assert info["splits"]["PublicTest"]["in_training"] == 0
    assert info["source"] == str(synthetic_csv)


def test_info_table_and_grid(synthetic_csv, tmp_path):
    grid = tmp_path / "plots" / "out.png"
    result = run_cli("info", synthetic_csv, "--grid", grid)
    assert result.returncode == 0, result.stderr
    assert grid.read_bytes().startswith(PNG_SIGNATURE)
    assert grid.stat().st_size > 1000
    assert "Training" in result.stdout and "140" in result.stdout
    assert str(grid) in result.stdout


def test_info_uses_fercnn_data(synthetic_csv):
    result = run_cli("info", "--json", env={"FERCNN_DATA": str(synthetic_csv)})
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["source"] == str(synthetic_csv)
    assert info["total"] == 210


def test_info_without_data_is_one_line_error():
    assert_one_line_error(run_cli("info"), "FERCNN_DATA")
    assert_one_line_error(run_cli("info", env={"FERCNN_DATA": ""}), "FERCNN_DATA")


# --- duplicates ---------------------------------------------------------------------------------


def test_duplicates_of_training(tmp_path):
    rows = make_rows({"Training": 21, "PublicTest": 7, "PrivateTest": 7}, seed=5)
    train_image = rows[4][1]
    rows[30] = (rows[30][0], train_image.copy(), "PrivateTest")  # a Training image, in the test
    rows[10] = (rows[10][0], rows[2][1].copy(), "Training")  # repeated inside Training only
    rows[31] = (rows[31][0], rows[22][1].copy(), "PrivateTest")  # PublicTest = PrivateTest
    path = tmp_path / "dups.csv"
    path.write_text(csv_text(rows))
    dataset = load_dataset(path)
    assert np.flatnonzero(dataset.in_training).tolist() == [30]
    assert np.flatnonzero(dataset.split("PrivateTest").in_training).tolist() == [30 - 28]
    summary = dataset.summary()
    assert summary["splits"]["PrivateTest"]["in_training"] == 1
    assert summary["splits"]["PublicTest"]["in_training"] == 0
    assert summary["splits"]["Training"]["in_training"] is None
    assert summary["distinct_images"] == len(rows) - 3
    info = json.loads(run_cli("info", path, "--json").stdout)
    assert info["splits"]["PrivateTest"]["in_training"] == 1


# --- image folders ------------------------------------------------------------------------------

TRAIN_FOLDERS = {"ANGRY": 20, "Happy": 13, "Neutral": 17}
TEST_FOLDERS = {"angry": 3, "happy": 4, "NEUTRAL": 5}


def write_face(path: Path, serial: int, rng: np.random.Generator) -> np.ndarray | None:
    """Write one image of a kind chosen by ``serial``; return its 48x48 form when that is known
    exactly."""
    kind = serial % 4
    if kind == 3:  # 16-bit gray PNG: scaled to 8 bits exactly, not clipped to white
        image = rng.integers(0, 256, (48, 48), dtype=np.uint8)
        assert cv2.imwrite(str(path.with_suffix(".png")), image.astype(np.uint16) * 257)
        return image
    if kind == 0:  # 48x48 gray PNG: lossless, so it must come back unchanged
        image = rng.integers(0, 256, (48, 48), dtype=np.uint8)
        assert cv2.imwrite(str(path.with_suffix(".png")), image)
        return image
    if kind == 1:  # 64x64 colour JPEG
        image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        assert cv2.imwrite(str(path.with_suffix(".jpg")), image)
        return None
    # 100x80 (tall) uniform gray PNG: stays uniform after resizing
    value = serial  # distinct per file, so no two known images are equal
    assert cv2.imwrite(str(path.with_suffix(".png")), np.full((100, 80), value, np.uint8))
    return np.full((48, 48), value, np.uint8)


def write_folders(root: Path, train=TRAIN_FOLDERS, test=TEST_FOLDERS, seed: int = 0) -> dict:
    """train/<Class>/ and test/<class>/ with mixed sizes; returns {image bytes: (label, split)}
    for the images whose 48x48 form is known exactly."""
    rng = np.random.default_rng(seed)
    known, serial = {}, 0
    for split_dir, counts in (("train", train), ("test", test)):
        for folder, n in counts.items():
            (root / split_dir / folder).mkdir(parents=True)
            for i in range(n):
                image = write_face(root / split_dir / folder / f"{folder}{i:03d}", serial, rng)
                serial += 1
                if image is not None:
                    known[image.tobytes()] = (EMOTIONS.index(folder.lower()), split_dir)
    return known


def per_class(dataset, split: str) -> dict[str, int]:
    counts = np.bincount(dataset.split(split).labels, minlength=len(EMOTIONS))
    return {e: int(c) for e, c in zip(EMOTIONS, counts, strict=True) if c}


def test_load_folders(tmp_path):
    known = write_folders(tmp_path / "faces")
    dataset = load_dataset(tmp_path / "faces")
    n_train, n_test = sum(TRAIN_FOLDERS.values()), sum(TEST_FOLDERS.values())
    assert dataset.images.shape == (n_train + n_test, 48, 48)
    assert dataset.images.dtype == np.uint8
    train_counts = {k.lower(): v for k, v in TRAIN_FOLDERS.items()}
    held = {k: round(v * 0.1) for k, v in train_counts.items()}
    assert held == {"angry": 2, "happy": 1, "neutral": 2}
    assert per_class(dataset, "PrivateTest") == {k.lower(): v for k, v in TEST_FOLDERS.items()}
    assert per_class(dataset, "PublicTest") == held
    assert per_class(dataset, "Training") == {k: v - held[k] for k, v in train_counts.items()}
    # every exactly-known image is present with its class, test/ ones in PrivateTest only
    rows = {img.tobytes(): i for i, img in enumerate(dataset.images)}
    for image, (label, split_dir) in known.items():
        i = rows[image]
        assert dataset.labels[i] == label
        in_test = dataset.usage[i] == SPLITS.index("PrivateTest")
        assert in_test == (split_dir == "test")


def test_folder_holdout_fraction_and_seed(tmp_path, monkeypatch):
    write_folders(tmp_path / "faces")

    caches = iter(range(100))

    def fresh_load(**kwargs):  # a new, empty cache each time, so nothing is reused
        monkeypatch.setenv("FERCNN_CACHE", str(tmp_path / f"cache{next(caches)}"))
        return load_dataset(tmp_path / "faces", **kwargs)

    wider = fresh_load(val_fraction=0.2)
    assert per_class(wider, "PublicTest") == {"angry": 4, "happy": 3, "neutral": 3}
    assert len(wider.split("PrivateTest")) == sum(TEST_FOLDERS.values())
    a, b = fresh_load(seed=3), fresh_load(seed=3)
    assert_same_dataset(a, b)
    c = fresh_load(seed=4)
    assert np.array_equal(a.images, c.images) and np.array_equal(a.labels, c.labels)
    assert not np.array_equal(a.usage, c.usage)
    assert per_class(c, "PublicTest") == per_class(a, "PublicTest")
    # the CLI passes --val-fraction through
    info = json.loads(run_cli("info", tmp_path / "faces", "--json", "--val-fraction", "0.2").stdout)
    assert info["splits"]["PublicTest"]["total"] == 10
    assert info["splits"]["PrivateTest"]["total"] == 12


def test_folder_bad_val_fraction(tmp_path):
    write_folders(tmp_path / "faces", train={"happy": 3}, test={"happy": 1})
    with pytest.raises(FercnnError, match="between 0 and 1"):
        load_dataset(tmp_path / "faces", val_fraction=1.5)


def _empty_class(root: Path) -> Path:
    (root / "train" / "sad").mkdir()
    return root / "train" / "sad"


def _unknown_class(root: Path) -> Path:
    bad = root / "train" / "contempt"
    bad.mkdir()
    cv2.imwrite(str(bad / "x.png"), np.zeros((48, 48), np.uint8))
    return bad


def _corrupt_png(root: Path) -> Path:
    bad = root / "train" / "Happy" / "zz_broken.png"
    bad.write_bytes(np.random.default_rng(0).bytes(600))
    return bad


def _missing_test(root: Path) -> Path:
    for path in sorted((root / "test").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    (root / "test").rmdir()
    return root


FOLDER_ERRORS = [("empty-class", _empty_class, "no images"),
                 ("unknown-class", _unknown_class, "unknown class folder"),
                 ("corrupt-png", _corrupt_png, "cannot read image"),
                 ("missing-test", _missing_test, "test/")]


@pytest.mark.parametrize("case, damage, message", FOLDER_ERRORS, ids=[c[0] for c in FOLDER_ERRORS])
def test_folder_errors(tmp_path, case, damage, message):
    root = tmp_path / "faces"
    write_folders(root, train={"Happy": 3, "ANGRY": 2}, test={"happy": 1})
    named = damage(root)
    with pytest.raises(FercnnError, match=message) as caught:
        load_dataset(root)
    assert str(named) in str(caught.value)
    assert_one_line_error(run_cli("info", root), str(named), message)


def test_broken_png_with_signature_is_one_line_error(tmp_path):
    root = tmp_path / "faces"
    write_folders(root, train={"Happy": 3}, test={"happy": 1})
    bad = root / "train" / "Happy" / "zz_broken.png"
    bad.write_bytes(PNG_SIGNATURE + np.random.default_rng(0).bytes(600))
    with pytest.raises(FercnnError, match="cannot read image"):
        folders_module.read_face(bad)
    assert_one_line_error(run_cli("info", root), str(bad), "cannot read image")


def test_folder_without_train_is_rejected(tmp_path):
    (tmp_path / "photos" / "happy").mkdir(parents=True)
    with pytest.raises(FercnnError, match="train/"):
        load_dataset(tmp_path / "photos")
    assert_one_line_error(run_cli("info", tmp_path / "photos"), str(tmp_path / "photos"))


# --- export-folders round trip ------------------------------------------------------------------


def test_export_folders_round_trip(synthetic_csv, tmp_path):
    out = tmp_path / "exported"
    result = run_cli("data", "export-folders", synthetic_csv, out)
    assert result.returncode == 0, result.stderr
    assert "wrote 210 PNG images" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["test", "train", "val"]
    assert sorted(p.name for p in (out / "val").iterdir()) == sorted(EMOTIONS)
    assert len(list(out.rglob("*.png"))) == 210
    original = load_dataset(synthetic_csv)
    exported = load_dataset(out)
    assert_same_dataset(exported, original)
    # val/ is the PublicTest split, so no hold-out is drawn whatever the fraction
    assert_same_dataset(load_dataset(out, val_fraction=0.5, seed=9), original)


def test_export_folders_bad_csv(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("emotion,pixels\n")
    assert_one_line_error(run_cli("data", "export-folders", path, tmp_path / "out"), str(path))
    assert not (tmp_path / "out").exists()


def test_export_folders_refuses_a_non_empty_folder(synthetic_csv, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    assert_one_line_error(run_cli("data", "export-folders", synthetic_csv, out), "not empty")
    assert [p.name for p in out.iterdir()] == ["old.txt"]


# --- FER+ ---------------------------------------------------------------------------------------

FERPLUS_HEADER = ("Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                  "contempt,unknown,NF")
# column order: neutral happiness surprise sadness anger disgust fear contempt unknown NF
CHOSEN_VOTES = [
    ([4, 6, 0, 0, 0, 0, 0, 0, 0, 0], 3),  # happiness -> happy
    ([0, 0, 0, 0, 7, 0, 3, 0, 0, 0], 0),  # anger -> angry
    ([10, 0, 0, 0, 0, 0, 0, 0, 0, 0], 6),  # neutral
    ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], 6),  # tie neutral/happiness -> first column
    ([0, 4, 0, 0, 4, 0, 0, 2, 0, 0], 3),  # tie happiness/anger -> happiness
    ([4, 0, 0, 0, 0, 0, 0, 6, 0, 0], -1),  # contempt
    ([0, 0, 0, 3, 0, 0, 2, 0, 5, 0], -1),  # unknown
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], -1),  # not a face, no emotion votes at all
    ([0, 0, 3, 0, 0, 3, 0, 0, 2, 2], 5),  # tie surprise/disgust -> surprise
    ([0, 0, 0, 8, 0, 2, 0, 0, 0, 0], 4),  # sadness -> sad
    ([0, 0, 0, 0, 0, 9, 1, 0, 0, 0], 1),  # disgust
    ([0, 0, 0, 0, 0, 0, 5, 5, 0, 0], 2),  # tie fear/contempt -> fear
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 6),  # all tied -> neutral
    ([0, 0, 0, 0, 0, 0, 0, 4, 3, 3], -1),  # contempt majority, no emotion votes
]
FERPLUS_COLUMN_OF = {"neutral": 0, "happy": 1, "surprise": 2, "sad": 3, "angry": 4,
                     "disgust": 5, "fear": 6}


def ferplus_votes(rows) -> tuple[np.ndarray, np.ndarray]:
    """Votes for every row: the chosen ones first, then 10 votes for the row's own class."""
    votes, majority = [], []
    for i, (label, _, _) in enumerate(rows):
        if i < len(CHOSEN_VOTES):
            v, m = CHOSEN_VOTES[i]
        else:
            v = [0] * 10
            v[FERPLUS_COLUMN_OF[EMOTIONS[label]]] = 10
            m = label
        votes.append(v)
        majority.append(m)
    return np.array(votes), np.array(majority)


def write_ferplus(path: Path, rows, votes: np.ndarray) -> Path:
    lines = [FERPLUS_HEADER]
    for i, ((_, _, usage), v) in enumerate(zip(rows, votes, strict=True)):
        name = "" if i == 7 else f"fer{i:07d}.png"
        lines.append(",".join([usage, name, *map(str, v)]))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def ferplus_csv(tmp_path, synthetic_rows):
    votes, _ = ferplus_votes(synthetic_rows)
    return write_ferplus(tmp_path / "fer2013new.csv", synthetic_rows, votes)


def test_ferplus_majority_and_distribution(ferplus_csv, synthetic_rows):
    votes, majority = ferplus_votes(synthetic_rows)
    labels = load_ferplus(ferplus_csv)
    assert labels.votes.shape == (len(synthetic_rows), 10)
    assert np.array_equal(labels.votes, votes)
    assert [SPLITS[u] for u in labels.usage] == [usage for _, _, usage in synthetic_rows]
    assert labels.plurality.tolist() == majority.tolist()
    dist = labels.distribution
    assert dist.shape == (len(synthetic_rows), 7)
    emotion_votes = votes[:, :7].sum(axis=1)
    np.testing.assert_allclose(dist.sum(axis=1), np.where(emotion_votes > 0, 1.0, 0.0),
                               atol=1e-6)
    np.testing.assert_allclose(dist[0], [0, 0, 0, 0.6, 0, 0, 0.4], atol=1e-6)
    np.testing.assert_allclose(dist[5], [0, 0, 0, 0, 0, 0, 1.0], atol=1e-6)  # contempt ignored
    np.testing.assert_allclose(dist[6], [0, 0, 0.4, 0, 0.6, 0, 0], atol=1e-6)  # unknown ignored
    np.testing.assert_allclose(dist[8], [0, 0.5, 0, 0, 0, 0.5, 0], atol=1e-6)  # NF ignored
    assert not dist[7].any() and not dist[13].any()


def test_apply_ferplus(synthetic_csv, ferplus_csv, synthetic_rows):
    _, majority = ferplus_votes(synthetic_rows)
    keep = majority >= 0
    assert (~keep).sum() == 4
    dataset = load_dataset(synthetic_csv)
    labels = load_ferplus(ferplus_csv)
    relabelled = apply_ferplus(dataset, labels)
    assert len(relabelled) == len(dataset) - 4
    assert np.array_equal(relabelled.images, dataset.images[keep])
    assert np.array_equal(relabelled.usage, dataset.usage[keep])
    assert relabelled.labels.tolist() == majority[keep].tolist()
    assert relabelled.labels.dtype == np.int64
    assert relabelled.soft_labels.shape == (len(relabelled), 7)
    np.testing.assert_allclose(relabelled.soft_labels, labels.distribution[keep])
    np.testing.assert_allclose(relabelled.soft_labels.sum(axis=1), 1.0, atol=1e-6)
    split = relabelled.split("Training")
    assert split.soft_labels is not None and len(split.soft_labels) == len(split)
    # load_dataset(..., ferplus=) and info --ferplus do the same
    via_load = load_dataset(synthetic_csv, ferplus=ferplus_csv)
    assert_same_dataset(via_load, relabelled)
    info = json.loads(run_cli("info", synthetic_csv, "--ferplus", ferplus_csv, "--json").stdout)
    assert info["total"] == len(dataset) - 4


# (votes in FERPLUS_HEADER order, label under the FER+ authors' majority rule)
AUTHORS_VOTES = [
    ([4, 6, 0, 0, 0, 0, 0, 0, 0, 0], 3),  # 6 of 10: happy
    ([5, 5, 0, 0, 0, 0, 0, 0, 0, 0], -1),  # half is not a majority (plurality: neutral)
    ([5, 1, 1, 1, 1, 1, 0, 0, 0, 0], 6),  # single votes dropped: 5 of 5, neutral
    ([4, 0, 0, 0, 3, 2, 0, 0, 1, 0], -1),  # 4 of 9 after the single unknown vote
    ([2, 0, 0, 0, 0, 0, 0, 6, 2, 0], 7),  # contempt: scored, never right for 7 classes
    ([0, 0, 0, 3, 0, 0, 0, 0, 7, 0], -1),  # unknown
    ([0, 0, 0, 0, 0, 0, 0, 0, 0, 10], -1),  # not a face
    ([1, 1, 1, 1, 1, 1, 1, 1, 1, 1], -1),  # every vote a single one: nothing left
    ([0, 0, 0, 0, 0, 9, 1, 0, 0, 0], 1),  # disgust
]


def test_ferplus_authors_majority_rule():
    votes = np.array([v for v, _ in AUTHORS_VOTES])
    labels = FerPlusLabels(votes, np.zeros(len(votes), dtype=np.uint8))
    assert labels.authors_majority.tolist() == [m for _, m in AUTHORS_VOTES]
    assert CONTEMPT == 7 == len(EMOTIONS)
    assert labels.labels("majority").tolist() == labels.authors_majority.tolist()
    assert labels.labels().tolist() == labels.plurality.tolist() == [3, 6, 6, 6, -1, -1, -1, 6, 1]
    with pytest.raises(FercnnError, match="unknown FER\\+ rule 'vote'"):
        labels.labels("vote")


def test_apply_ferplus_majority_rule_and_evaluate(synthetic_csv, ferplus_csv):
    dataset, votes = load_dataset(synthetic_csv), load_ferplus(ferplus_csv)
    authors = votes.authors_majority
    keep = (authors >= 0) & (authors < CONTEMPT)
    relabelled = apply_ferplus(dataset, votes, "majority")
    assert len(relabelled) == keep.sum() < len(dataset)
    assert np.array_equal(relabelled.images, dataset.images[keep])
    assert relabelled.labels.tolist() == authors[keep].tolist()
    assert_same_dataset(load_dataset(synthetic_csv, ferplus=ferplus_csv, ferplus_rule="majority"),
                        relabelled)
    # evaluate scores the same rows, and reports the contempt faces it leaves out
    args = ("evaluate", "default", "--data", synthetic_csv, "--ferplus", ferplus_csv,
            "--split", "Training")
    plurality = json.loads(run_cli(*args, "--json").stdout)
    result = json.loads(run_cli(*args, "--ferplus-rule", "majority", "--json").stdout)
    training = votes.usage == SPLITS.index("Training")
    assert result["labels"] == "FER+ authors' majority"
    assert plurality["labels"] == "FER+ plurality"
    assert result["images"] == (keep & training).sum() < plurality["images"]
    assert result["contempt_images"] == ((authors == CONTEMPT) & training).sum() == 1
    assert result["accuracy_with_contempt"] == pytest.approx(
        result["accuracy"] * result["images"] / (result["images"] + 1))
    text = run_cli(*args, "--ferplus-rule", "majority").stdout
    assert "counting the 1 contempt faces as errors" in text
    assert_one_line_error(run_cli("evaluate", "default", "--data", synthetic_csv,
                                  "--ferplus-rule", "majority"), "needs FER+ labels")


def test_ferplus_row_count_mismatch(synthetic_csv, tmp_path, synthetic_rows):
    votes, _ = ferplus_votes(synthetic_rows)
    short = write_ferplus(tmp_path / "short.csv", synthetic_rows[:-1], votes[:-1])
    dataset = load_dataset(synthetic_csv)
    with pytest.raises(FercnnError, match="209 rows, but .* has 210"):
        apply_ferplus(dataset, load_ferplus(short))
    assert_one_line_error(run_cli("info", synthetic_csv, "--ferplus", short), "short.csv",
                          "row position")


def test_ferplus_usage_mismatch(synthetic_csv, tmp_path, synthetic_rows):
    votes, _ = ferplus_votes(synthetic_rows)
    rows = list(synthetic_rows)
    rows[0] = (rows[0][0], rows[0][1], "PrivateTest")
    other = write_ferplus(tmp_path / "usage.csv", rows, votes)
    with pytest.raises(FercnnError, match="usage.csv: line 2: Usage differs"):
        apply_ferplus(load_dataset(synthetic_csv), load_ferplus(other))


def test_ferplus_bad_files(tmp_path):
    missing = tmp_path / "none.csv"
    with pytest.raises(FercnnError, match="no such file"):
        load_ferplus(missing)
    header = tmp_path / "header.csv"
    header.write_text("Usage,Image name,neutral\nTraining,a.png,10\n")
    with pytest.raises(FercnnError, match="line 1"):
        load_ferplus(header)
    votes = tmp_path / "votes.csv"
    votes.write_text(FERPLUS_HEADER + "\nTraining,a.png,10,0,0,0,0,0,0,0,0,0\n"
                     "Training,b.png,x,0,0,0,0,0,0,0,0,0\n")
    with pytest.raises(FercnnError, match="line 3"):
        load_ferplus(votes)
    fields = tmp_path / "fields.csv"
    fields.write_text(FERPLUS_HEADER + "\nTraining,a.png,10,0,0\n")
    with pytest.raises(FercnnError, match="line 2"):
        load_ferplus(fields)


def test_info_and_grid_need_neither_torch_nor_matplotlib(synthetic_csv, tmp_path):
    """The base install (no training extra) runs the data summary and its sample grid."""
    grid = tmp_path / "grid.png"
    result = run_cli_without(("torch", "matplotlib"), "info", synthetic_csv, "--grid", grid)
    assert result.returncode == 0, result.stderr
    assert grid.read_bytes().startswith(b"\x89PNG")
