"""The page in a real browser: ``fercnn serve`` started as a user would, headless Chromium
(Debian's, driven by Playwright; never a browser Playwright downloads) uploading the bundled
photo, switching the model, and running the camera on a fake one that films the photo."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from fercnn.recognition import DEMO_PHOTO, load_image

from .servers import serve_cli

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytest.importorskip("fastapi", reason="the serve extra is not installed")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium: install Debian's (apt-get install chromium) to drive "
                "the page in a real browser", allow_module_level=True)


def fake_camera_video(path: Path) -> Path:
    """The bundled photo as a one-frame YUV4MPEG2 video: Chromium's fake camera plays it."""
    image = load_image(DEMO_PHOTO)
    height, width = image.shape[:2]
    planes = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode()
                     + b"FRAME\n" + planes.tobytes())
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    video = fake_camera_video(tmp_path_factory.mktemp("camera") / "astronaut.y4m")
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"]
    with serve_cli() as url, sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS + camera)
        try:
            yield launched, url
        finally:
            launched.close()


@pytest.fixture
def page(browser):
    launched, url = browser
    context = launched.new_context(viewport={"width": 390, "height": 844})  # a phone
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.goto(url)
    tab.locator("#model option").first.wait_for(state="attached")
    yield tab
    context.close()
    assert errors == []


def status_says(page, text: str) -> None:
    page.wait_for_function("text => document.querySelector('#status').textContent"
                           ".includes(text)", arg=text)


def test_an_uploaded_photo_shows_its_faces_emotion_on_the_page(page, tmp_path):
    assert page.locator("#model").input_value() == "default"
    page.set_input_files("#photo", str(DEMO_PHOTO))
    title = page.locator("#faces h2").first
    title.wait_for()
    assert "happy" in title.inner_text()
    assert page.locator("#faces .bar").count() == 7
    assert "1 face" in page.locator("#status").inner_text()
    canvas = page.locator("#view")
    assert canvas.is_visible() and canvas.evaluate("c => [c.width, c.height]") == [512, 512]
    # the box is drawn: a pixel on its top edge has the colour of "happy"
    colour = canvas.evaluate("c => Array.from(c.getContext('2d').getImageData(226, 67, 1, 1)"
                             ".data.slice(0, 3))")
    assert colour[0] > 200 and colour[1] > 150 and colour[2] < 80, colour
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_switching_the_model_recognises_the_photo_again(page):
    page.set_input_files("#photo", str(DEMO_PHOTO))
    status_says(page, "model default")
    page.locator("#model").select_option("accurate")
    status_says(page, "model accurate")
    assert "happy" in page.locator("#faces h2").first.inner_text()


def test_the_photos_mix_box_recognises_the_photo_again_for_it(page):
    page.set_input_files("#photo", str(DEMO_PHOTO))
    status_says(page, "model default")
    page.locator("#prior").check()
    status_says(page, "read for photos' mix")
    assert "happy" in page.locator("#faces h2").first.inner_text()


def test_the_camera_is_recognised_live_until_stopped(page, tmp_path):
    page.click("#camera")
    status_says(page, "Camera: 1 face")
    assert "happy" in page.locator("#faces h2").first.inner_text()
    assert page.locator("#camera").inner_text() == "Stop camera"
    page.screenshot(path=str(tmp_path / "camera.png"), full_page=True)
    page.click("#camera")
    assert page.locator("#camera").inner_text() == "Start camera"
    assert page.evaluate("() => document.querySelector('#video').srcObject"
                         ".getTracks().every(t => t.readyState === 'ended')")
