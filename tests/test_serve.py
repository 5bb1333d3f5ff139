"""``fercnn serve``: every route, every limit, the error shape, and the CLI's side."""

from __future__ import annotations

import io
import json
import re
import socket
import struct
import tempfile
import time
import warnings
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fercnn import EMOTIONS  # noqa: E402
from fercnn.cli import main  # noqa: E402
from fercnn.recognition import DEMO_PHOTO, Recognizer  # noqa: E402
from fercnn.serve.app import create_app  # noqa: E402
from fercnn.serve.settings import MB, Limits, Settings  # noqa: E402

from .conftest import assert_one_line_error, run_cli, run_cli_without  # noqa: E402
from .servers import serve_in_thread  # noqa: E402

with warnings.catch_warnings():  # starlette 1.x asks for httpx2 here; httpx still works
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PHOTO = DEMO_PHOTO.read_bytes()  # 512x512, one happy face, 0.8 MB
SMALL = Settings(limits=Limits(max_body_bytes=MB, max_pixels=300_000, max_concurrent=1,
                               body_timeout_s=0.5, header_timeout_s=0.5))


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="module")
def small():
    """Limits a test can reach: 1 MB bodies, 0.3 megapixels, one request at a time."""
    with TestClient(create_app(SMALL)) as c:
        yield c


def post_photo(c: TestClient, data: bytes = PHOTO, query: str = "", name: str = "photo.png",
               content_type: str = "image/png"):
    return c.post(f"/v1/recognize{query}", files={"file": (name, data, content_type)})


def post_raw(c: TestClient, data, content_type: str = "image/png", **headers):
    return c.post("/v1/recognize", content=data, headers={"content-type": content_type,
                                                          **headers})


def assert_error(response, status: int, *needles: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    for needle in needles:
        assert needle in body["error"], body["error"]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` pixels and holds almost nothing."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


# ---- the routes ---------------------------------------------------------------------------


def test_a_posted_photo_gets_predicts_json_per_face_plus_timing(client, capsys):
    response = post_photo(client)
    assert response.status_code == 200, response.text
    body = response.json()
    assert main(["predict", str(DEMO_PHOTO), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)[0]["faces"]
    assert [f["emotion"] for f in body["faces"]] == ["happy"]
    assert [f["box"] for f in body["faces"]] == [f["box"] for f in predicted]
    assert set(body["faces"][0]) == set(predicted[0])
    assert body["faces"][0]["probabilities"] == pytest.approx(predicted[0]["probabilities"],
                                                              abs=1e-5)
    assert body["image"] == "photo.png" and (body["width"], body["height"]) == (512, 512)
    assert body["model"] == "default" and body["tta"] == "mirror"
    assert set(body["timing_ms"]) == {"read", "decode", "recognize", "total"}
    assert body["timing_ms"]["total"] >= body["timing_ms"]["recognize"] > 0


def test_a_raw_image_body_is_recognised_like_a_form_upload(client):
    raw = post_raw(client, PHOTO)
    form = post_photo(client)
    assert raw.status_code == 200 and raw.json()["image"] == "upload"
    assert raw.json()["faces"] == form.json()["faces"]
    octets = post_raw(client, PHOTO, "application/octet-stream")
    assert octets.json()["faces"] == form.json()["faces"]


def test_a_jpeg_from_a_phone_is_read_upright_from_its_exif(client):
    """A portrait stored sideways with an EXIF orientation is turned before detection."""
    sideways = Image.open(DEMO_PHOTO).convert("RGB").rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to view
    buffer = io.BytesIO()
    sideways.save(buffer, "JPEG", quality=92, exif=exif)
    body = post_photo(client, buffer.getvalue(), name="phone.jpg",
                      content_type="image/jpeg").json()
    assert [f["emotion"] for f in body["faces"]] == ["happy"]
    assert body["faces"][0]["box"] == pytest.approx([173, 67, 107, 108], abs=6)


def test_models_lists_the_bundled_models_with_their_metadata(client):
    body = client.get("/v1/models").json()
    models = {m["name"]: m for m in body["models"]}
    assert body["default"] == "default" and set(models) == {"default", "accurate", "tiny"}
    assert models["default"]["default"] and not models["accurate"]["default"]
    for name in ("default", "accurate", "tiny"):  # each file's own figure, from its metadata
        expected = Recognizer(name).metadata["private_test_accuracy"]
        assert 0.66 < models[name]["private_test_accuracy"] == pytest.approx(expected)
    for model in models.values():
        assert model["classes"] == list(EMOTIONS) and model["quantization"] == "int8"
        assert model["metadata"]["input"]["shape"] == [1, 48, 48]


def test_healthz_answers_ok(client):
    assert client.get("/healthz").json() == {"status": "ok", "default_model": "default"}


def test_the_model_switch_selects_the_accurate_ensemble(client):
    default = post_photo(client).json()
    accurate = post_photo(client, query="?model=accurate").json()
    assert accurate["model"] == "accurate" and accurate["faces"][0]["emotion"] == "happy"
    assert (accurate["faces"][0]["probabilities"]["happy"]
            != default["faces"][0]["probabilities"]["happy"])


@pytest.mark.parametrize("name", ["nope", "../assets/default.onnx", str(DEMO_PHOTO)])
def test_a_model_the_server_does_not_offer_is_404_never_a_path(client, name):
    assert_error(post_photo(client, query=f"?model={name}"), 404, "default, accurate")


def test_tta_chooses_the_views_averaged(client):
    """tta: mirror (default), none or ten; true and false, its earlier values, still work."""
    read = {}
    for value in ("none", "mirror", "ten", "true", "false"):
        body = post_photo(client, query=f"?tta={value}").json()
        assert body["faces"][0]["emotion"] == "happy"
        assert sum(body["faces"][0]["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        read[value] = (body["tta"], body["faces"][0]["probabilities"])
    assert read["true"] == read["ten"] and read["false"] == read["none"]
    assert [read[v][0] for v in ("none", "mirror", "ten")] == ["none", "mirror", "ten"]
    assert read["none"][1] != read["mirror"][1] != read["ten"][1]
    assert post_photo(client).json()["faces"][0]["probabilities"] == read["mirror"][1]


def test_photo_reader_false_reads_with_the_model_alone(client):
    alone = Recognizer(photo_reader=False).predict(str(DEMO_PHOTO))[0].probabilities
    body = post_photo(client, query="?photo_reader=false").json()
    assert body["faces"][0]["probabilities"] == pytest.approx(alone, abs=1e-5)
    assert post_photo(client).json()["faces"][0]["probabilities"] != pytest.approx(alone,
                                                                                   abs=1e-5)


def test_prior_photos_reads_for_the_mix_of_expressions_in_photos(client):
    for_photos = Recognizer(prior="photos").predict(str(DEMO_PHOTO))[0].probabilities
    body = post_photo(client, query="?prior=photos").json()
    assert body["faces"][0]["probabilities"] == pytest.approx(for_photos, abs=1e-5)
    assert body["prior"] == "photos" and post_photo(client).json()["prior"] == "fer2013"
    assert post_photo(client).json()["faces"][0]["probabilities"] != pytest.approx(for_photos,
                                                                                   abs=1e-5)
    assert_error(post_photo(client, query="?prior=crowds"), 422, "prior")


def test_an_unknown_tta_mode_is_a_422(client):
    assert_error(post_photo(client, query="?tta=twenty"), 422, "unknown TTA mode")


def test_detect_false_reads_the_whole_image_as_one_face(client):
    faces = post_photo(client, query="?detect=false").json()["faces"]
    assert len(faces) == 1 and faces[0]["box"] == [0, 0, 512, 512]


def test_the_haar_detector_and_min_face_are_options(client):
    haar = post_photo(client, query="?detector=haar").json()["faces"]
    assert [f["emotion"] for f in haar] == ["happy"] and haar[0]["score"] is not None
    assert post_photo(client, query="?min_face=200").json()["faces"] == []
    assert_error(post_photo(client, query="?min_face=3"), 422, "min_face")
    assert_error(post_photo(client, query="?detector=dlib"), 422, "detector")


def test_a_photo_without_a_face_is_an_empty_list(client):
    gray = encoded(Image.new("RGB", (320, 240), (120, 130, 140)))
    body = post_photo(client, gray).json()
    assert body["faces"] == [] and (body["width"], body["height"]) == (320, 240)


def test_openapi_stays_but_the_cdn_docs_pages_are_off(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/recognize", "/v1/models", "/healthz"} <= set(schema["paths"])
    assert_error(client.get("/docs"), 404)
    assert_error(client.get("/redoc"), 404)


def test_the_page_and_its_files_load_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="photo"' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "style.css"):
        text = client.get("/" if name == "index.html" else f"/static/{name}").text
        assert not re.findall(r"(?:https?:)?//[\w-]+(?:\.[\w-]+)+", text), name  # no host
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")


def test_cors_is_off_unless_an_origin_is_given(client):
    origin = {"origin": "https://example.org"}
    assert "access-control-allow-origin" not in client.get("/healthz", headers=origin).headers
    with TestClient(create_app(Settings(cors=("https://example.org",)))) as allowed:
        answer = allowed.get("/healthz", headers=origin)
        assert answer.headers["access-control-allow-origin"] == "https://example.org"
        other = allowed.get("/healthz", headers={"origin": "https://elsewhere.org"})
        assert "access-control-allow-origin" not in other.headers


# ---- the limits ---------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_from_its_content_length(small):
    assert_error(post_raw(small, b"\0" * (MB + 1)), 413, "1,048,576")


def test_a_chunked_body_over_the_limit_is_413_while_reading(small):
    chunks = (b"\0" * 65536 for _ in range(20))  # no Content-Length: 1.25 MB in chunks
    assert_error(post_raw(small, chunks), 413, "over the limit")


def test_a_content_length_that_lies_low_is_caught_while_reading(small):
    assert_error(post_raw(small, b"\0" * (2 * MB), **{"content-length": "100"}), 413)


@pytest.mark.parametrize("data, content_type, status, needle", [
    (b"hello", "text/plain", 415, "text/plain"),
    (b'{"image": 1}', "application/json", 415, "application/json"),
    (b"this is not a png", "image/png", 415, "not a readable image"),
    (b"", "image/jpeg", 415, "not a readable image"),
    (PHOTO[:2000], "image/png", 415, "not a readable image"),  # truncated
])
def test_what_is_not_an_image_is_refused(client, data, content_type, status, needle):
    assert_error(post_raw(client, data, content_type), status, needle)


def test_an_eps_file_is_refused_not_handed_to_ghostscript(client):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    assert_error(post_photo(client, eps, name="x.eps", content_type="image/eps"), 415)


def test_a_form_without_a_file_field_is_422(client):
    response = client.post("/v1/recognize", files={"photo": ("a.png", PHOTO, "image/png")})
    assert_error(response, 422, "'file'")
    assert_error(post_raw(client, b"--x\r\n", "multipart/form-data"), 422, "boundary")


def test_a_decompression_bomb_is_413_before_it_is_decoded(client):
    bomb = encoded(Image.new("L", (8000, 8000)))  # 62 kB that decode to 64 megapixels
    assert len(bomb) < 100_000
    started = time.perf_counter()
    assert_error(post_photo(client, bomb), 413, "64,000,000 pixels")
    assert time.perf_counter() - started < 1.0
    huge = png_header_only(30000, 30000)  # past Pillow's own bomb limit too
    assert_error(post_photo(client, huge), 413, "900000000 pixels")


def test_the_pixel_limit_is_configurable(small):
    assert_error(post_photo(small, encoded(Image.new("RGB", (600, 600)))), 413, "360,000")
    assert post_photo(small).status_code == 200  # 512x512 fits 300,000 pixels


def test_a_full_server_answers_503_with_retry_after(small):
    gate = small.app.state.fercnn.gate
    assert gate.try_enter()  # the one slot taken, as by a request in progress
    try:
        busy = post_photo(small)
        assert_error(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
    finally:
        gate.leave()
    assert post_photo(small).status_code == 200


def test_refused_requests_give_their_slot_back(small):
    for _ in range(3):
        assert post_raw(small, b"junk").status_code == 415
        assert post_raw(small, b"\0" * (MB + 1)).status_code == 413
    assert post_photo(small).status_code == 200  # one slot, still free


def test_uploads_are_never_written_to_disk(client, monkeypatch):
    """A 4 MB upload (Starlette's own form parsing spools past 1 MB) with every way to make
    a temporary file broken."""
    def refuse(*args, **kwargs):
        raise AssertionError("a temporary file was made")
    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)
    big = encoded(Image.fromarray(noise))
    assert len(big) > 4 * MB
    response = post_photo(client, big)
    assert response.status_code == 200 and response.json()["width"] == 1200


# ---- slow clients, on a real socket -------------------------------------------------------


@pytest.fixture(scope="module")
def live():
    with serve_in_thread(create_app(SMALL), header_timeout=0.5, keep_alive=1) as (url, _):
        yield int(url.rsplit(":", 1)[1])


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_a_body_that_does_not_arrive_in_time_is_408(live):
    with socket.create_connection(("127.0.0.1", live), timeout=10) as sock:
        sock.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 1000\r\n\r\n0123456789")
        started = time.monotonic()
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b'{"error":' in answer
    assert time.monotonic() - started < 5


def test_headers_that_do_not_arrive_in_time_close_the_connection(live):
    with socket.create_connection(("127.0.0.1", live), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        started = time.monotonic()
        assert read_all(sock) == b""
        assert time.monotonic() - started < 5
    with socket.create_connection(("127.0.0.1", live), timeout=10) as idle:
        started = time.monotonic()
        assert read_all(idle) == b""  # connected, sent nothing
        assert time.monotonic() - started < 5


def test_a_huge_declared_body_is_refused_and_its_tail_not_read_for_ever(live):
    """413 from the headers alone; the server then reads and drops what the client still
    sends (so that the client sees the 413) for the header timeout, not for 5 GB."""
    with socket.create_connection(("127.0.0.1", live), timeout=10) as sock:
        sock.sendall(b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                     b"Content-Length: 5000000000\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 413") and b"5,000,000,000 bytes" in answer
        started = time.monotonic()
        with pytest.raises(OSError):  # broken pipe or reset once the server hangs up
            while time.monotonic() - started < 5:
                sock.sendall(b"\0" * 65536)
                time.sleep(0.01)
        assert time.monotonic() - started < 3


def test_a_kept_alive_connection_serves_request_after_request(live):
    with httpx.Client(base_url=f"http://127.0.0.1:{live}") as session:
        for _ in range(3):
            assert session.get("/healthz").status_code == 200
            time.sleep(0.2)
        assert session.post("/v1/recognize", content=PHOTO,
                            headers={"content-type": "image/png"}).status_code == 200


def test_connections_answer_without_nagles_delay_on_a_shared_socket(client):
    """With --workers, uvicorn hands each worker a listening socket made with protocol 0, on
    whose connections asyncio leaves Nagle's algorithm on (an answer then waited ~40 ms for
    the client's delayed ACK); fercnn's protocol turns it off on every connection."""
    shared = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # protocol 0, as uvicorn's
    shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    shared.bind(("127.0.0.1", 0))
    shared.listen()
    with serve_in_thread(client.app, sock=shared) as (url, server), \
            httpx.Client(base_url=url) as session:
        assert session.get("/healthz").status_code == 200
        sockets = [c.transport.get_extra_info("socket") for c in server.server_state.connections]
        assert sockets and all(
            s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for s in sockets)


# ---- the command --------------------------------------------------------------------------


def test_a_missing_model_file_is_a_one_line_error(tmp_path):
    result = run_cli("serve", "--model", tmp_path / "missing.onnx", timeout=120)
    assert_one_line_error(result, "missing.onnx", "no such model file")


def test_a_port_in_use_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", port, timeout=120)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}")


def test_serve_without_its_extra_is_a_one_line_error_and_other_commands_never_load_it():
    result = run_cli_without(("fastapi",), "serve")
    assert_one_line_error(result, "serve extra", "pip install")
    blocked = ("fastapi", "starlette", "uvicorn", "python_multipart")
    result = run_cli_without(blocked, "predict", str(DEMO_PHOTO), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["faces"][0]["emotion"] == "happy"
