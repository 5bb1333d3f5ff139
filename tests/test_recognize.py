"""Export to ONNX and recognition: parity with torch, the Recognizer, predict, no torch needed."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fercnn.errors import FercnnError
from fercnn.recognition import Recognizer, load_image, to_gray
from fercnn.training.checkpoint import load_checkpoint, model_from_checkpoint

from .conftest import assert_one_line_error, csv_text, make_rows, run_cli, run_cli_without


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A shallow model trained briefly on synthetic data, exported to fp32 and int8 ONNX."""
    folder = tmp_path_factory.mktemp("export")
    data = folder / "fer.csv"
    data.write_text(csv_text(make_rows({"Training": 210, "PublicTest": 35, "PrivateTest": 35})))
    config = folder / "tiny.yaml"
    config.write_text("model: shallow\nepochs: 1\nbatch_size: 32\n")
    run = folder / "run"
    assert run_cli("train", "--config", config, "--data", data, "--out", run).returncode == 0
    for name, extra in (("model.onnx", ()), ("model-int8.onnx", ("--int8",))):
        result = run_cli("export", run, "--out", folder / name, "--data", data, "--score",
                         *extra)
        assert result.returncode == 0, result.stderr
    return {"run": run, "data": data, "fp32": folder / "model.onnx",
            "int8": folder / "model-int8.onnx", "folder": folder}


def test_onnx_matches_torch_within_1e_4(exported):
    model = model_from_checkpoint(load_checkpoint(exported["run"]))
    faces = np.random.default_rng(1).integers(0, 256, (16, 48, 48)).astype(np.uint8)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(faces[:, None]).float() / 255), 1)
    got = Recognizer(exported["fp32"], tta="none").predict_batch(faces)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-4)


def test_metadata_travels_inside_the_file(exported):
    for key, quantization in (("fp32", "fp32"), ("int8", "int8")):
        meta = Recognizer(exported[key]).metadata
        assert meta["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                   "neutral"]
        assert meta["input"]["shape"] == [1, 48, 48] and meta["model"] == "shallow"
        assert meta["quantization"] == quantization
        assert 0 <= meta["private_test_accuracy"] <= 1 and len(meta["config_digest"]) == 12
        # exported with data: calibrated on its PublicTest for --prior photos (calibrate.py)
        assert meta["calibration"]["split"] == "PublicTest"
        assert meta["calibration"]["faces"] == 35


def test_export_leaves_private_test_unread_unless_asked_to_score(exported, tmp_path):
    for flags in ((), ("--no-score",)):  # the old flag still runs, and reads nothing
        out = tmp_path / "candidate.onnx"
        result = run_cli("export", exported["run"], "--int8", *flags, "--out", out,
                         "--data", exported["data"])
        assert result.returncode == 0, result.stderr
        assert "PrivateTest" not in result.stdout
        meta = Recognizer(out).metadata
        assert meta["quantization"] == "int8" and meta["private_test_accuracy"] is None
    joined = tmp_path / "joined.onnx"  # an ensemble of exported files likewise
    result = run_cli("export", exported["fp32"], exported["int8"], "--out", joined,
                     "--data", exported["data"])
    assert result.returncode == 0, result.stderr
    assert Recognizer(joined).metadata["private_test_accuracy"] is None


def test_evaluate_scores_public_test_unless_private_test_is_named(tmp_path):
    data = tmp_path / "fer.csv"  # the two test splits differ in size, so the count tells them
    data.write_text(csv_text(make_rows({"Training": 20, "PublicTest": 12, "PrivateTest": 9})))
    plain = run_cli("evaluate", "default", "--data", data, "--json")
    assert plain.returncode == 0, plain.stderr
    chosen = json.loads(plain.stdout)
    assert chosen["split"] == "PublicTest" and chosen["images"] == 12
    final = json.loads(run_cli("evaluate", "default", "--data", data, "--split", "PrivateTest",
                               "--json").stdout)
    assert final["split"] == "PrivateTest" and final["images"] == 9
    assert "on PublicTest:" in run_cli("evaluate", "default", "--data", data).stdout


def test_int8_model_gives_probabilities(exported):
    faces = np.random.default_rng(2).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    probabilities = Recognizer(exported["int8"]).predict_batch(faces)
    assert probabilities.shape == (5, 7)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-3)


def _ops_after_onnxruntime_fusions(model: Path, tmp_path: Path) -> list[str]:
    """The graph's node types as onnxruntime runs it, after its graph optimisations."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.log_severity_level = 3
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return [node.op_type for node in onnx.load(tmp_path / "optimized.onnx").graph.node]


def test_int8_model_stays_integer_from_input_to_logits(exported, tmp_path):
    """After onnxruntime's fusions the int8 graph quantises once (the input) and dequantises
    once (the logits): no float islands around ReLU, pooling or flattening."""
    ops = _ops_after_onnxruntime_fusions(exported["int8"], tmp_path)
    assert ops.count("QuantizeLinear") == 1 and ops.count("DequantizeLinear") == 1, ops


def test_int8_residual_network_stays_integer_and_agrees_with_torch(tmp_path):
    """The residual additions and the average pool are quantised too, and the int8 graph
    names the same emotions as the float network."""
    from fercnn.models.resnet import FerResNet
    from fercnn.training.export import _export_fp32, _quantize_int8

    torch.manual_seed(0)
    model = FerResNet(width=8).eval()  # resnet18's graph, narrower
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.weight.data.uniform_(0.5, 1.5)  # as if trained
        bn.running_mean.normal_(0, 0.1)
    _export_fp32([model], tmp_path / "fp32.onnx")
    faces = np.random.default_rng(4).integers(0, 256, (128, 48, 48)).astype(np.uint8)
    _quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", faces)
    ops = _ops_after_onnxruntime_fusions(tmp_path / "int8.onnx", tmp_path)
    assert ops.count("QLinearAdd") == 8, ops
    assert ops.count("QuantizeLinear") == 1 and ops.count("DequantizeLinear") == 1, ops
    images = faces[:, None].astype(np.float32) / 255
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(images)), 1).numpy()
    got = Recognizer(tmp_path / "int8.onnx", tta="none").predict_batch(faces)
    assert np.abs(got - expected).max() < 0.05
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def _largest_int8_weight(path) -> int:
    """The largest magnitude among the int8 initializers that the graph dequantises (its
    quantised weights)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    initializers = {i.name: i for i in proto.graph.initializer}
    weights = [numpy_helper.to_array(initializers[node.input[0]]) for node in proto.graph.node
               if node.op_type == "DequantizeLinear" and node.input[0] in initializers
               and initializers[node.input[0]].data_type == onnx.TensorProto.INT8]
    return max(int(np.abs(w.astype(np.int32)).max()) for w in weights)


@pytest.mark.parametrize("model", ["exported", "default", "accurate", "tiny"])
def test_int8_weights_use_seven_bits_so_that_no_cpu_saturates(model, request):
    """Without VNNI (AVX2 only), onnxruntime sums pairs of uint8 x int8 products in 16 bits
    (VPMADDUBSW): 255 x 64 x 2 fits, 255 x 127 x 2 does not. With 8-bit weights the embedded
    model lost 2.2 points of PrivateTest on such a CPU."""
    from fercnn.recognition import BUNDLED_MODELS

    path = request.getfixturevalue("exported")["int8"] if model == "exported" \
        else BUNDLED_MODELS[model]
    assert _largest_int8_weight(path) <= 64


def test_an_int8_graph_dequantises_back_to_its_float_network(tmp_path):
    """The float graph behind a QDQ file computes what the network computes: the ReLUs that
    the quantiser folded into its clamps come back."""
    import onnx

    from fercnn.models.vgg import FerVGG
    from fercnn.training.export import _dequantized, _export_fp32, _quantize_int8

    torch.manual_seed(0)
    model = FerVGG(width=8, hidden=32).eval()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.weight.data.uniform_(0.5, 1.5)  # as if trained, so the classes differ clearly
        bn.running_mean.normal_(0, 0.1)
    _export_fp32([model], tmp_path / "fp32.onnx")
    faces = np.random.default_rng(8).integers(0, 256, (64, 48, 48)).astype(np.uint8)
    _quantize_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx", faces)
    proto = _dequantized(onnx.load(str(tmp_path / "int8.onnx")))
    ops = [node.op_type for node in proto.graph.node]
    assert "QuantizeLinear" not in ops and "DequantizeLinear" not in ops, ops
    assert ops.count("Relu") == 9, ops  # eight convolutions and the hidden layer
    onnx.save(proto, str(tmp_path / "float.onnx"))
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(faces[:, None]).float() / 255), 1)
    got = Recognizer(tmp_path / "float.onnx", tta="none").predict_batch(faces)
    assert np.abs(got - expected.numpy()).max() < 0.05


def test_an_earlier_8_bit_file_is_quantised_again_without_its_run(exported, tmp_path):
    """`fercnn export OLD.onnx --int8`: a file written with 8-bit weights, as fercnn did
    before, gets 7-bit ones, keeps its metadata and still gives its network's probabilities."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    from fercnn.training.export import QUANTIZED_OPS, write_metadata

    faces = np.random.default_rng(9).integers(0, 256, (64, 48, 48)).astype(np.uint8)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"image": faces[:, None].astype(np.float32) / 255}])

        def get_next(self):
            return next(self.batches, None)

    old = tmp_path / "old.onnx"
    quantize_static(str(exported["fp32"]), str(old), Reader(), activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True,
                    op_types_to_quantize=QUANTIZED_OPS)
    write_metadata(old, Recognizer(exported["fp32"]).metadata)
    assert _largest_int8_weight(old) == 127
    new = tmp_path / "new.onnx"
    result = run_cli("export", old, "--int8", "--out", new, "--data", exported["data"])
    assert result.returncode == 0, result.stderr
    assert _largest_int8_weight(new) <= 64
    meta = Recognizer(new).metadata
    assert meta["model"] == "shallow" and meta["quantization"] == "int8"
    assert meta["config_digest"] == Recognizer(exported["fp32"]).metadata["config_digest"]
    expected = Recognizer(exported["fp32"]).predict_batch(faces)
    assert np.abs(Recognizer(new).predict_batch(faces) - expected).max() < 0.05


def test_an_exported_model_is_only_quantised_again_alone(exported, tmp_path):
    for args in ((exported["fp32"],), (exported["run"], exported["int8"], "--int8")):
        assert_one_line_error(run_cli("export", *args, "--out", tmp_path / "x.onnx"),
                              "is an exported model")


def test_recognizer_accepts_paths_arrays_and_pil(exported, tmp_path):
    from PIL import Image

    face = np.random.default_rng(3).integers(0, 256, (48, 48)).astype(np.uint8)
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), face)
    recognizer = Recognizer(exported["fp32"])
    results = [recognizer.predict(x, detect=False)
               for x in (path, face, cv2.cvtColor(face, cv2.COLOR_GRAY2BGR),
                         Image.fromarray(face))]
    for faces in results:
        assert len(faces) == 1 and faces[0].box == (0, 0, 48, 48)
        assert abs(sum(faces[0].probabilities.values()) - 1) < 1e-5
        assert faces[0].emotion == max(faces[0].probabilities, key=faces[0].probabilities.get)
    first = results[0][0].probabilities
    for faces in results[1:]:
        assert faces[0].probabilities == pytest.approx(first, abs=1e-6)


def test_deep_gray_images_are_scaled_not_clipped(exported, tmp_path):
    """16-bit gray PNGs, float and 32-bit TIFFs and uint16 arrays: Pillow's and a plain cast's
    conversion to 8 bits clip them (the portrait turned white, no face found)."""
    from PIL import Image

    from fercnn.recognition import DEMO_PHOTO

    gray = cv2.cvtColor(cv2.imread(str(DEMO_PHOTO)), cv2.COLOR_BGR2GRAY)
    deep = gray.astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "16.png"), deep)
    Image.fromarray(gray.astype(np.float32) / 255).save(tmp_path / "float.tiff")
    Image.fromarray(deep.astype(np.int32)).save(tmp_path / "int32.tiff")
    recognizer = Recognizer(exported["fp32"])
    expected = recognizer.predict(gray)
    assert len(expected) == 1
    for image in (tmp_path / "16.png", tmp_path / "float.tiff", tmp_path / "int32.tiff", deep,
                  cv2.cvtColor(deep, cv2.COLOR_GRAY2BGR)):
        assert np.array_equal(to_gray(load_image(image)), gray), image
        faces = recognizer.predict(image)
        assert [f.box for f in faces] == [f.box for f in expected], image
        assert faces[0].probabilities == pytest.approx(expected[0].probabilities, abs=1e-6)


def test_given_boxes_and_no_face(exported):
    recognizer = Recognizer(exported["fp32"])
    image = np.full((200, 300), 128, np.uint8)  # flat gray: nothing to detect
    assert recognizer.predict(image) == []
    faces = recognizer.predict(image, boxes=[(10, 20, 60, 60), (150, 50, 80, 80)])
    assert [f.box for f in faces] == [(10, 20, 60, 60), (150, 50, 80, 80)]


def test_predict_command_reports_each_problem_and_goes_on(exported, tmp_path):
    good = tmp_path / "face.png"
    cv2.imwrite(str(good), np.random.default_rng(4).integers(0, 256, (48, 48)).astype(np.uint8))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("predict", good, broken, tmp_path / "missing.png", empty, "--json",
                     "--no-detect", "--model", exported["fp32"])
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [r["image"] for r in report] == [str(good)]
    assert len(report[0]["faces"]) == 1
    assert sorted(report[0]["faces"][0]["probabilities"]) == sorted(
        ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in result.stderr
    assert any("broken.jpg" in e for e in errors) and any("missing.png" in e for e in errors)
    assert any("no images" in e for e in errors)


def test_annotated_copies_keep_subfolders_and_never_overwrite(exported, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    rng = np.random.default_rng(5)
    names = ["a/x.png", "b/x.png", "x.png", "x.jpg", "x-png.bmp", "anim.gif"]
    for name in names:
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (48, 48)).astype(np.uint8)).save(photos / name)
    out = photos / "annotated"  # inside the input folder: a second run must not read it
    for _ in range(2):
        result = run_cli("predict", photos, "--out", out, "--no-detect", "--json", "--model",
                         exported["fp32"])
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)) == len(names)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert len(written) == len(names)  # one copy each: x.jpg, x.png and x-png.bmp all kept
    assert {"a/x-emotions.png", "b/x-emotions.png", "anim-emotions.png"} <= set(written)


def test_recognition_works_without_torch(exported, tmp_path):
    """Block torch in a fresh interpreter: import fercnn and predict must still work."""
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.random.default_rng(5).integers(0, 256, (48, 48)).astype(np.uint8))
    result = run_cli_without(("torch",), "predict", face, "--no-detect", "--json", "--model",
                             exported["fp32"])
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)[0]["faces"]
    assert len(faces) == 1 and abs(sum(faces[0]["probabilities"].values()) - 1) < 1e-5


def test_photo_detection_annotation_and_demo(exported, tmp_path):
    from fercnn.recognition import DEMO_PHOTO

    out = tmp_path / "annotated"
    result = run_cli("predict", DEMO_PHOTO, "--json", "--out", out, "--model", exported["fp32"])
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)[0]["faces"]
    assert len(faces) == 1  # the astronaut's face, found by the Haar cascade
    x, y, w, h = faces[0]["box"]
    assert 150 < x < 200 and 50 < y < 90 and 80 < w < 110
    annotated = cv2.imread(str(out / "astronaut-emotions.png"))
    assert annotated.shape == (512, 512, 3)
    assert not np.array_equal(annotated, cv2.imread(str(DEMO_PHOTO)))
    too_big = run_cli("predict", DEMO_PHOTO, "--min-face", "600", "--model", exported["fp32"])
    assert_one_line_error(too_big, "astronaut.png: no face found")
    assert too_big.stdout == ""
    bad = run_cli("predict", DEMO_PHOTO, "--min-face", "0", "--model", exported["fp32"])
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "--min-face" in bad.stderr and "Traceback" not in bad.stderr
    demo = run_cli("demo", "--out", tmp_path / "demo", "--model", exported["fp32"])
    assert demo.returncode == 0, demo.stderr
    assert (tmp_path / "demo" / "astronaut-emotions.png").exists()


def test_huge_photo_is_detected_on_a_downscaled_copy(exported):
    from fercnn.recognition import DEMO_PHOTO

    photo = cv2.imread(str(DEMO_PHOTO))
    huge = cv2.resize(photo, (6000, 6000), interpolation=cv2.INTER_LINEAR)[:4000]
    faces = Recognizer(exported["fp32"]).predict(huge)
    assert len(faces) == 1
    x, y, w, h = faces[0].box  # mapped back to full resolution (about 11.7x the original)
    assert 1800 < x < 2400 and 600 < y < 1000 and 900 < w < 1300


def make_video(path, frames: int = 30) -> None:
    from fercnn.recognition import DEMO_PHOTO

    photo = cv2.imread(str(DEMO_PHOTO))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 480))
    for i in range(frames):  # the face drifts a little from frame to frame
        writer.write(np.ascontiguousarray(photo[i:i + 480, i:i + 480]))
    writer.release()


def test_video_gives_csv_rows_annotated_video_and_timeline(exported, tmp_path):
    video = tmp_path / "clip.mp4"
    make_video(video)
    result = run_cli("video", video, "--out", tmp_path / "out.mp4", "--csv",
                     tmp_path / "faces.csv", "--model", exported["fp32"])
    assert result.returncode == 0, result.stderr
    import csv

    with open(tmp_path / "faces.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["frame"]) for r in rows] == list(range(30))
    assert all(r["face"] == "0" for r in rows)
    assert abs(float(rows[10]["time"]) - 1.0) < 1e-6
    for r in rows:
        assert abs(sum(float(r[e]) for e in ("angry", "disgust", "fear", "happy", "sad",
                                             "surprise", "neutral")) - 1) < 1e-3
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    capture.release()
    assert (tmp_path / "faces-timeline.png").read_bytes().startswith(b"\x89PNG")
    every = run_cli("video", video, "--every", 5, "--csv", tmp_path / "five.csv", "--model",
                    exported["fp32"])
    assert every.returncode == 0 and "6 analysed" in every.stdout
    blank = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for _ in range(5):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    nobody = run_cli("video", blank, "--csv", tmp_path / "blank.csv", "--model",
                     exported["fp32"])
    assert_one_line_error(nobody, "blank.mp4: no face found in any of the 5 frames analysed")
    assert "5 frames read" in nobody.stdout  # the summary and the files are still written
    assert (tmp_path / "blank.csv").read_text().startswith("frame,time,face")


def test_bad_video_input_is_one_line(exported, tmp_path):
    from .conftest import assert_one_line_error

    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    assert_one_line_error(run_cli("video", corrupt, "--model", exported["fp32"]), "corrupt.mp4")
    assert_one_line_error(run_cli("video", tmp_path / "none.mp4", "--model", exported["fp32"]),
                          "none.mp4")
    # no such camera: OpenCV's own warnings stay quiet
    assert_one_line_error(run_cli("video", "--camera", "57", "--model", exported["fp32"]),
                          "camera 57: cannot open")
    video = tmp_path / "clip.mp4"
    make_video(video, frames=2)
    assert_one_line_error(run_cli("video", video, "--csv", tmp_path, "--model",
                                  exported["fp32"]), "cannot write here")
    a_file = tmp_path / "a-file"
    a_file.write_text("")  # a folder the annotated copies cannot go into: one line too
    from fercnn.recognition import DEMO_PHOTO

    assert_one_line_error(run_cli("predict", DEMO_PHOTO, "--no-detect", "--out", a_file / "sub",
                                  "--model", exported["fp32"]), "a-file")


def test_evaluate_an_exported_model_matches_its_metadata(exported):
    for key in ("fp32", "int8"):
        result = run_cli("evaluate", exported[key], "--data", exported["data"], "--split",
                         "PrivateTest", "--json")
        assert result.returncode == 0, result.stderr
        metrics = json.loads(result.stdout)
        expected = Recognizer(exported[key]).metadata["private_test_accuracy"]
        assert round(metrics["accuracy"], 4) == expected
        assert metrics["images"] == 35


def test_tta_views_are_shifts_and_mirrors():
    from fercnn.tta import tta_views

    faces = np.random.default_rng(6).integers(0, 256, (3, 48, 48)).astype(np.uint8)
    views = tta_views(faces)
    assert len(views) == 10 and all(v.shape == faces.shape for v in views)
    assert np.array_equal(views[0], faces) and np.array_equal(views[1], faces[:, :, ::-1])
    assert np.array_equal(views[2][:, 2:, 2:], faces[:, :-2, :-2])  # shifted by 2 px
    assert len({v.tobytes() for v in views}) == 10


def test_a_tta_recognizer_averages_each_faces_ten_views(exported, tmp_path):
    """Recognizer(tta="ten") and `predict --tta` give the mean over fercnn.tta's views (the
    ones `evaluate --tta` scores), in one session call per batch."""
    from fercnn.tta import tta_views

    faces = np.random.default_rng(7).integers(0, 256, (3, 48, 48)).astype(np.uint8)
    plain = Recognizer(exported["fp32"], tta="none")
    expected = np.mean([plain.predict_batch(view) for view in tta_views(faces)], axis=0)
    averaged = Recognizer(exported["fp32"], tta=True).predict_batch(faces)
    assert averaged.shape == (3, 7)
    np.testing.assert_allclose(averaged, expected, atol=1e-6)
    assert not np.allclose(averaged, plain.predict_batch(faces), atol=1e-4)

    face = tmp_path / "face.png"
    cv2.imwrite(str(face), faces[0])
    common = ("predict", face, "--no-detect", "--json", "--model", exported["fp32"])
    with_tta = run_cli(*common, "--tta")
    assert with_tta.returncode == 0, with_tta.stderr
    probabilities = json.loads(with_tta.stdout)[0]["faces"][0]["probabilities"]
    np.testing.assert_allclose(list(probabilities.values()), expected[0], atol=1e-6)


def test_by_default_each_face_is_read_with_its_mirror_image(exported, tmp_path):
    """The recognition path's default averages a face and its mirror image; `--views none`
    gives the model's own output, and a mirrored face reads the same as the face."""
    faces = np.random.default_rng(8).integers(0, 256, (3, 48, 48)).astype(np.uint8)
    plain = Recognizer(exported["fp32"], tta="none")
    mirrored = faces[:, :, ::-1]
    expected = (plain.predict_batch(faces) + plain.predict_batch(mirrored)) / 2
    default = Recognizer(exported["fp32"])
    assert default.tta == "mirror"
    np.testing.assert_allclose(default.predict_batch(faces), expected, atol=1e-6)
    np.testing.assert_allclose(default.predict_batch(mirrored), expected, atol=1e-6)
    assert not np.allclose(expected, plain.predict_batch(faces), atol=1e-4)

    face = tmp_path / "face.png"
    cv2.imwrite(str(face), faces[0])
    common = ("predict", face, "--no-detect", "--json", "--model", exported["fp32"])
    one_view = plain.predict_batch(faces)[0]
    for options, wanted in (((), expected[0]), (("--views", "none"), one_view)):
        done = run_cli(*common, *options)
        assert done.returncode == 0, done.stderr
        probabilities = json.loads(done.stdout)[0]["faces"][0]["probabilities"]
        np.testing.assert_allclose(list(probabilities.values()), wanted, atol=1e-6)


def test_an_unknown_views_mode_is_a_one_line_error(exported, tmp_path):
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.zeros((48, 48), np.uint8))
    done = run_cli("predict", face, "--no-detect", "--views", "twenty")
    assert_one_line_error(done, "--views", "invalid choice: 'twenty'")
    with pytest.raises(FercnnError, match="unknown TTA mode"):
        Recognizer(exported["fp32"], tta="twenty")


def test_ensemble_and_tta_evaluation(exported, tmp_path):
    single = json.loads(run_cli("evaluate", exported["run"], "--data", exported["data"],
                                "--json").stdout)
    onnx = json.loads(run_cli("evaluate", exported["fp32"], "--data", exported["data"],
                              "--json").stdout)
    ensemble = run_cli("evaluate", exported["run"], exported["fp32"], "--data",
                       exported["data"], "--json", "--tta", "--out", tmp_path)
    assert ensemble.returncode == 0, ensemble.stderr
    result = json.loads(ensemble.stdout)
    assert [m["path"] for m in result["models"]] == [str(exported["run"]),
                                                     str(exported["fp32"])]
    assert result["tta"] == "ten" and 0 <= result["accuracy"] <= 1
    assert single["tta"] == "none"  # a split's figure is the model's own, as training logs it
    assert abs(single["loss"] - onnx["loss"]) < 0.01  # the same network, torch vs ONNX
    assert (tmp_path / "metrics-PublicTest.json").exists()


def test_demo_with_the_embedded_model_needs_no_torch(tmp_path):
    result = run_cli_without(("torch", "matplotlib"), "demo", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "happy" in result.stdout.splitlines()[0]
    assert (tmp_path / "astronaut-emotions.png").read_bytes().startswith(b"\x89PNG")


def test_an_ensemble_exports_as_one_model_averaging_its_members(exported, tmp_path):
    folder, data = exported["folder"], exported["data"]
    other = tmp_path / "other"
    result = run_cli("train", "--config", folder / "tiny.yaml", "--data", data, "--seed", "1",
                     "--out", other)
    assert result.returncode == 0, result.stderr
    single = tmp_path / "other.onnx"
    ensemble = tmp_path / "ensemble.onnx"
    for out, runs in ((single, [other]), (ensemble, [exported["run"], other])):
        result = run_cli("export", *runs, "--out", out, "--data", data)
        assert result.returncode == 0, result.stderr
    faces = np.random.default_rng(7).integers(0, 256, (9, 48, 48)).astype(np.uint8)
    expected = (Recognizer(exported["fp32"]).predict_batch(faces)
                + Recognizer(single).predict_batch(faces)) / 2
    np.testing.assert_allclose(Recognizer(ensemble).predict_batch(faces), expected, atol=1e-5)
    meta = Recognizer(ensemble).metadata
    assert meta["model"] == "ensemble of shallow + shallow" and len(meta["members"]) == 2

    weighted = tmp_path / "weighted.onnx"
    result = run_cli("export", exported["run"], other, "--weights", "3", "1", "--out", weighted,
                     "--data", data)
    assert result.returncode == 0, result.stderr
    expected = (0.75 * Recognizer(exported["fp32"]).predict_batch(faces)
                + 0.25 * Recognizer(single).predict_batch(faces))
    np.testing.assert_allclose(Recognizer(weighted).predict_batch(faces), expected, atol=1e-5)
    meta = Recognizer(weighted).metadata
    assert meta["model"] == "ensemble of shallow (0.75) + shallow (0.25)"
    assert [m["weight"] for m in meta["members"]] == [0.75, 0.25]
    for bad in (("3",), ("3", "0")):
        result = run_cli("export", exported["run"], other, "--weights", *bad, "--out", weighted)
        assert_one_line_error(result, "--weights")

    joined = tmp_path / "joined.onnx"  # the same, joined from the exported files
    result = run_cli("export", exported["fp32"], single, "--weights", "3", "1", "--out", joined)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(Recognizer(joined).predict_batch(faces), expected, atol=1e-5)
    assert [m["source"] for m in Recognizer(joined).metadata["members"]] == \
        [str(exported["fp32"]), str(single)]
    # a member's calibration is not the ensemble's; joined without data, it has none
    assert "calibration" in Recognizer(exported["fp32"]).metadata
    assert "calibration" not in Recognizer(joined).metadata
    assert_one_line_error(run_cli("export", exported["run"], single, "--out", joined),
                          "not both")
    nested = tmp_path / "nested.onnx"  # an ensemble joined again counts its networks
    assert run_cli("export", joined, single, "--out", nested).returncode == 0
    assert [m["weight"] for m in Recognizer(nested).metadata["members"]] == [0.375, 0.125, 0.5]


def test_the_bundled_tiny_model_is_selectable_by_name_and_reads_the_astronaut_happy():
    from fercnn.recognition import DEMO_PHOTO

    assert Recognizer("tiny").metadata["model"] == "vgg-tiny"
    result = run_cli_without(("torch",), "predict", DEMO_PHOTO, "--model", "tiny", "--json")
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)[0]["faces"]
    assert len(faces) == 1 and faces[0]["emotion"] == "happy"


def test_the_tiny_model_keeps_to_its_size_and_work_limits():
    """A quarter of a megabyte on disk and a tenth of the arithmetic of ``vgg-s`` (the
    default's main network): the model for a phone or a webcam, called one face at a time."""
    from fercnn.models import count_macs, create_model
    from fercnn.recognition import BUNDLED_MODELS

    tiny = Recognizer("tiny")
    assert BUNDLED_MODELS["tiny"].stat().st_size <= 256 * 1024
    assert count_macs(create_model(tiny.metadata["model"])) * 10 \
        <= count_macs(create_model("vgg-s"))
    probabilities = tiny.predict_batch(np.full((3, 48, 48), 128, np.uint8))
    assert probabilities.shape == (3, 7)
    np.testing.assert_allclose(probabilities.sum(1), 1, atol=1e-5)


def test_the_bundled_accurate_ensemble_is_selectable_by_name(tmp_path):
    from fercnn.recognition import DEMO_PHOTO

    assert Recognizer("accurate").metadata["model"].startswith("ensemble of")
    result = run_cli_without(("torch",), "predict", DEMO_PHOTO, "--model", "accurate", "--json")
    assert result.returncode == 0, result.stderr
    faces = json.loads(result.stdout)[0]["faces"]
    assert len(faces) == 1 and faces[0]["emotion"] == "happy"


def test_a_photo_file_is_read_upright_from_its_exif(tmp_path):
    """A phone's JPEG stored sideways with orientation 6 (turn 90 degrees clockwise to view)."""
    from PIL import Image

    from fercnn.recognition import DEMO_PHOTO

    upright = cv2.imread(str(DEMO_PHOTO))[:, 64:448]  # 512 high, 384 wide
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)).save(
        tmp_path / "phone.jpg", "JPEG", quality=95, exif=exif)
    loaded = load_image(tmp_path / "phone.jpg")
    assert loaded.shape == upright.shape
    assert np.abs(loaded.astype(int) - upright).mean() < 3


def test_rgb_arrays_become_bgr():
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255  # red, opaque
    for image in (rgba[..., :3], rgba):
        bgr = load_image(image, color="rgb")
        assert bgr.shape == (4, 5, 3)
        assert (bgr[..., 2] == 200).all() and (bgr[..., :2] == 0).all()
