"""Batch recognition: ``predict --workers``, ``--csv``, ``recognize_paths`` and the Dask path
give what one process gives, in input order, and one broken file does not end the batch."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fercnn.errors import FercnnError
from fercnn.labels import EMOTIONS
from fercnn.recognition import DEMO_PHOTO
from fercnn.recognition.batch import CSV_FIELDS, recognize_paths

from .conftest import run_cli


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """The bundled portrait as it is, cropped, halved and mirrored (JPEG), a subfolder, a
    picture without a face and a file that is no image: sorted, the faceless one is in the
    middle and the broken one first, so order and error handling both show."""
    folder = tmp_path_factory.mktemp("batch")
    image = cv2.imread(str(DEMO_PHOTO))
    (folder / "sub").mkdir()
    cv2.imwrite(str(folder / "a-photo.png"), image)
    cv2.imwrite(str(folder / "b-crop.png"), image[20:360, 90:400])
    cv2.imwrite(str(folder / "c-half.png"), cv2.resize(image, (256, 256)))
    cv2.imwrite(str(folder / "d-no-face.png"), np.tile(np.arange(200, dtype=np.uint8), (160, 1)))
    cv2.imwrite(str(folder / "e-mirrored.jpg"), image[:, ::-1])
    cv2.imwrite(str(folder / "sub" / "f-photo.png"), image)
    (folder / "0-broken.png").write_bytes(b"not an image at all")
    return folder


def predict(folder: Path, *options) -> tuple:
    result = run_cli("predict", folder, "--json", *options, timeout=120)
    return result, json.loads(result.stdout)


@pytest.fixture(scope="module")
def one_process(photos):
    return predict(photos, "--workers", "1")


@pytest.fixture(scope="module")
def two_workers(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch-out")
    result, report = predict(photos, "--workers", "2", "--csv", out / "faces.csv",
                             "--out", out / "annotated")
    return result, report, out


def assert_same_faces(got: list[dict], expected: list[dict]) -> None:
    """The same images in the same order, the same boxes and emotions, probabilities to 1e-5."""
    assert [r["image"] for r in got] == [r["image"] for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert [f["box"] for f in mine["faces"]] == [f["box"] for f in theirs["faces"]]
        assert [f["emotion"] for f in mine["faces"]] == [f["emotion"] for f in theirs["faces"]]
        for a, b in zip(mine["faces"], theirs["faces"], strict=True):
            np.testing.assert_allclose([a["probabilities"][e] for e in EMOTIONS],
                                       [b["probabilities"][e] for e in EMOTIONS], atol=1e-5)


def test_the_test_folder_holds_faces_and_a_faceless_image(one_process, photos):
    _, report = one_process
    faces = {Path(r["image"]).name: len(r["faces"]) for r in report}
    assert faces == {"a-photo.png": 1, "b-crop.png": 1, "c-half.png": 1, "d-no-face.png": 0,
                     "e-mirrored.jpg": 1, "f-photo.png": 1}
    assert {f["emotion"] for r in report for f in r["faces"]} == {"happy"}


def test_two_workers_give_the_faces_of_one_process_in_the_same_order(one_process, two_workers):
    assert_same_faces(two_workers[1], one_process[1])


def test_a_broken_file_is_reported_and_the_batch_goes_on(one_process, two_workers):
    for result, report, *_ in (one_process, two_workers):
        assert result.returncode == 1  # the broken file and the faceless picture
        errors = result.stderr.strip().splitlines()
        assert len(errors) == 2 and "Traceback" not in result.stderr
        assert "0-broken.png: not a readable image" in errors[0]
        assert "d-no-face.png: no face found" in errors[1]
        assert len(report) == 6  # every other image, the faceless one with no faces


def test_csv_has_a_row_per_face_and_a_bare_row_for_a_faceless_image(two_workers):
    _, report, out = two_workers
    with open(out / "faces.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == CSV_FIELDS
        rows = list(reader)
    assert [row["path"] for row in rows] == [r["image"] for r in report]
    for row, entry in zip(rows, report, strict=True):
        if not entry["faces"]:
            assert row["face"] == "" and row["emotion"] == "" and row["happy"] == ""
            continue
        face = entry["faces"][0]
        assert row["face"] == "0" and row["emotion"] == face["emotion"]
        assert [int(row[k]) for k in "xywh"] == face["box"]
        np.testing.assert_allclose([float(row[e]) for e in EMOTIONS],
                                   [face["probabilities"][e] for e in EMOTIONS], atol=1e-5)
        assert float(row["score"]) == pytest.approx(face["score"], abs=1e-5)


def test_workers_write_the_annotated_copies(two_workers, photos):
    annotated = two_workers[2] / "annotated"
    written = sorted(str(p.relative_to(annotated)) for p in annotated.rglob("*.png"))
    assert written == ["a-photo-emotions.png", "b-crop-emotions.png", "c-half-emotions.png",
                       "d-no-face-emotions.png", "e-mirrored-emotions.png",
                       "sub/f-photo-emotions.png"]
    copy = cv2.imread(str(annotated / "a-photo-emotions.png"))
    assert copy.shape == (512, 512, 3) and not np.array_equal(copy, cv2.imread(str(DEMO_PHOTO)))


def test_recognize_paths_keeps_the_input_order_across_chunks(photos, one_process):
    """Reversed, with a repeat, one image per chunk: each result is its own path's."""
    expected = {r["image"]: r for r in one_process[1]}
    paths = sorted(expected, reverse=True) + [sorted(expected)[0]]
    results = list(recognize_paths(paths, workers=2, chunk_size=1))
    assert [r.path for r in results] == paths
    assert_same_faces([r.to_dict() for r in results], [expected[p] for p in paths])


def test_a_missing_model_fails_before_any_worker_starts(photos):
    with pytest.raises(FercnnError, match="no such model file"):
        recognize_paths([photos / "a-photo.png"], "missing.onnx", workers=2)


def test_a_model_the_workers_cannot_load_is_one_error_line(photos, tmp_path):
    """The workers find it out; their error still reaches the user as one line, exit 2."""
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    result = run_cli("predict", photos, "--workers", "2", "--model", broken, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "broken.onnx: not a readable ONNX model" in errors[0]


def test_an_unwritable_csv_is_one_error_line_before_any_image(photos):
    result = run_cli("predict", photos / "a-photo.png", "--csv", photos, timeout=60)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_dask_local_cluster_gives_the_faces_of_predict(photos, one_process):
    distributed = pytest.importorskip("dask.distributed")
    from fercnn.recognition.cluster import recognition_bag

    _, report = one_process
    paths = [str(photos / "0-broken.png")] + [r["image"] for r in report]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        results = recognition_bag(paths, partition_size=2).compute()
    assert [r.path for r in results] == paths
    assert "not a readable image" in results[0].error
    assert_same_faces([r.to_dict() for r in results[1:]], report)
