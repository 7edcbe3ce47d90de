"""``vos app`` in a real browser (Debian's headless Chromium through Selenium and chromium-driver) on a real clip:
click an object, see its mask where the click was, add a second object with a box, track, scrub to a later
frame, correct a frame, track again, export, and compare the export with what ``vos track --prompts`` writes
for the exported prompts; errors (a click outside the frame, a video that does not exist) show on the page.

Set ``VOS_APP_SCREENSHOT=path.png`` to keep the screenshot taken after tracking (docs/app.png is one)."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import pytest
from app_client import object_pixels, running_app
from PIL import Image

from vos.cli import main

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
FRAMES = 12
GIRL = (395, 220)  # on her dress, frame 0 of bedroom.mp4 (960x540)
BOY = (150, 135, 295, 405)  # a box around the boy on frame 0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None, reason="needs Debian's chromium and chromium-driver "
                       "(apt-get install chromium chromium-driver; .ci/run installs them)"),
]


@pytest.fixture(scope="module")
def clip(shared_dir, tmp_path_factory):
    """The first frames of a real clip, as an MP4 of its own (so the page seeks in an H.264 file)."""
    from streams import open_video
    from streams.overlay import OverlayVideoWriter

    source = shared_dir / "data" / "videos" / "bedroom.mp4"
    if not source.exists():
        pytest.skip(f"{source} is absent")
    path = tmp_path_factory.mktemp("clip") / "bedroom12.mp4"
    with open_video(source) as video, OverlayVideoWriter(path, fps=video.fps) as writer:
        for i in range(FRAMES):
            writer.write(video[i].image)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1440,1040", "--force-device-scale-factor=1",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, what: str, timeout: float = 60):
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; page error: {driver.find_element('id', 'error-text').text!r}")


def state(driver) -> dict:
    return driver.execute_script("return window.vosApp.state")


def click_video(driver, x: float, y: float, button: str = "left", to: tuple[float, float] | None = None) -> None:
    """Press on video pixel ``(x, y)`` of the stage (and drag to ``to``), as a user does."""
    from selenium.webdriver.common.action_chains import ActionChains

    stage = driver.find_element("id", "stage")
    rect = driver.execute_script("return arguments[0].getBoundingClientRect()", stage)

    def offset(px, py):  # Selenium offsets are from the element's centre
        at = driver.execute_script("return window.vosApp.videoToStage(arguments[0], arguments[1])", px, py)
        return round(at["x"] - rect["width"] / 2), round(at["y"] - rect["height"] / 2)

    actions = ActionChains(driver).move_to_element_with_offset(stage, *offset(x, y))
    if button == "right":
        actions.context_click().perform()
    elif to is not None:
        actions.click_and_hold().move_to_element_with_offset(stage, *offset(*to)).release().perform()
    else:
        actions.click().perform()


def go_to(driver, frame: int) -> None:
    driver.execute_script("const s = document.getElementById('scrub'); s.value = arguments[0];"
                          "s.dispatchEvent(new Event('input'))", frame)
    wait(driver, lambda: driver.execute_script("return window.vosApp.images.index") == frame, f"frame {frame}")


def drawn_pixel(driver, x: float, y: float) -> list[int]:
    """The RGB the page's canvas shows at video pixel ``(x, y)``."""
    return driver.execute_script(
        "const at = window.vosApp.videoToStage(arguments[0], arguments[1]);"
        "const c = document.getElementById('canvas');"
        "return Array.from(c.getContext('2d').getImageData(Math.round(at.x * devicePixelRatio),"
        " Math.round(at.y * devicePixelRatio), 1, 1).data).slice(0, 3)", x, y)


def test_click_track_correct_export_in_the_browser(clip, browser, tmp_path):
    driver = browser
    with running_app(clip) as client:
        driver.get(client.url)
        wait(driver, lambda: (state(driver) or {}).get("video"), "the video")
        wait(driver, lambda: driver.execute_script("return window.vosApp.images.index") == 0, "frame 0")
        raw = drawn_pixel(driver, *GIRL)

        # A click on the girl: her mask appears where the click was, drawn on the page, with the mask choice.
        click_video(driver, *GIRL)
        wait(driver, lambda: len(state(driver)["prompts"]) == 1, "the click")
        assert state(driver)["objects"][0]["id"] == 1  # the first click made object 1
        girl = object_pixels(client.layer(0), 1)
        assert girl[GIRL[1], GIRL[0]] and 0.01 < girl.mean() < 0.3
        wait(driver, lambda: drawn_pixel(driver, *GIRL) != raw, "the mask drawn on the page")
        figures = driver.find_elements("css selector", "#candidates figure")
        assert len(figures) == 3 and len(driver.find_elements("css selector", "#candidates figure.chosen")) == 1

        # A second object, by a box drag.
        driver.find_element("id", "add-object").click()
        wait(driver, lambda: state(driver)["selected"] == 2, "object 2")
        click_video(driver, BOY[0], BOY[1], to=(BOY[2], BOY[3]))
        wait(driver, lambda: len(state(driver)["prompts"]) == 2, "the box")
        box = state(driver)["prompts"][1]
        assert (box["frame"], box["obj_id"]) == (0, 2) and np.abs(np.subtract(box["box"], BOY)).max() <= 1
        boy = object_pixels(client.layer(0), 2)
        ys, xs = np.nonzero(boy)
        assert boy[270, 222] and BOY[0] < xs.mean() < BOY[2] and BOY[1] < ys.mean() < BOY[3]

        # Track: the progress bar fills, every frame gets masks; scrub to the last frame.
        driver.find_element("id", "track").click()
        wait(driver, lambda: (state(driver)["job"] or {}).get("state") == "done", "tracking")
        assert driver.find_element("id", "progress").get_attribute("value") == str(FRAMES)
        assert state(driver)["tracked"] == [[0, FRAMES - 1]]
        go_to(driver, FRAMES - 1)
        assert driver.find_element("id", "frame-label").text == f"frame {FRAMES - 1} / {FRAMES - 1}"
        last = client.layer(FRAMES - 1)
        for obj_id, first in ((1, girl), (2, boy)):
            mask = object_pixels(last, obj_id)
            overlap = (mask & first).sum() / max(mask.sum(), 1)
            assert mask.sum() > 0.3 * first.sum() and overlap > 0.3, (obj_id, mask.sum(), overlap)
        go_to(driver, 6)

        # A correction on tracked frame 6: a right click (background) on object 1, which then tracks with it.
        driver.find_element("css selector", "#objects li[data-id='1']").click()
        wait(driver, lambda: state(driver)["selected"] == 1, "object 1 selected")
        before = object_pixels(client.layer(6), 1)
        ys, xs = np.nonzero(before)
        top = (int(xs.max()) - 3, int(ys[xs.argmax()]))  # the right end of her mask: the wall beside her hand
        click_video(driver, *top, button="right")
        wait(driver, lambda: len(state(driver)["prompts"]) == 4, "the correction")
        seed, click = state(driver)["prompts"][2:]
        assert seed == {"frame": 6, "obj_id": 1, "mask": True}
        assert (click["frame"], click["obj_id"], click["labels"]) == (6, 1, [0])
        assert np.abs(np.subtract(click["points"][0], top)).max() <= 1
        corrected = object_pixels(client.layer(6), 1)
        assert (corrected != before).any() and state(driver)["stale"] == [[0, FRAMES - 1]]
        wait(driver, lambda: driver.execute_script(
            "const shown = Array.from(document.querySelectorAll('#candidates img'));"
            "return window.vosApp.images.masksUrl.includes('v=' + window.vosApp.state.version) && shown.length &&"
            " shown.every((i) => i.complete && i.naturalWidth > 0)"), "the page redrawn")
        shot = Path(os.environ.get("VOS_APP_SCREENSHOT") or tmp_path / "app.png")
        driver.save_screenshot(str(shot))
        assert Image.open(shot).size[0] == 1440
        driver.find_element("id", "track").click()
        wait(driver, lambda: state(driver)["job"]["state"] == "done" and not state(driver)["stale"], "tracking again")
        assert (object_pixels(client.layer(6), 1) == corrected).all()

        # Errors show on the page and the server goes on: a click outside the frame, a video that does not exist.
        margin = driver.execute_script("const s = document.getElementById('stage');"
                                       "return window.vosApp.stageToVideo(2, s.clientHeight / 2)")
        if margin["x"] >= 0:  # the frame fills the stage's width: use the margin above it
            margin = driver.execute_script("const s = document.getElementById('stage');"
                                           "return window.vosApp.stageToVideo(s.clientWidth / 2, 2)")
        click_video(driver, margin["x"], margin["y"])
        banner = wait(driver, lambda: driver.find_element("id", "error-text").text, "the error")
        assert "is outside the 960x540 frame" in banner and len(state(driver)["prompts"]) == 4
        field = driver.find_element("id", "video-path")
        field.clear()
        field.send_keys(str(tmp_path / "nothing.mp4"))
        driver.find_element("css selector", "#open-form button").click()
        wait(driver, lambda: "no such video file" in driver.find_element("id", "error-text").text, "the open error")
        assert client.state()["video"]["path"] == str(clip)
        driver.find_element("id", "error-close").click()

        # Export DAVIS masks, the overlay and prompts.json; vos track replays them to the same masks.
        out = tmp_path / "export"
        folder = driver.find_element("id", "export-folder")
        folder.clear()
        folder.send_keys(str(out))
        driver.find_element("id", "export").click()
        wait(driver, lambda: state(driver)["job"]["kind"] == "export" and state(driver)["job"]["state"] == "done", "the export")
        assert "replay: vos track" in driver.find_element("id", "job").text
        assert driver.find_element("id", "error").get_attribute("hidden") is not None

    replay = tmp_path / "replay"
    # With the app's thread count: vos track alone picks one from the load, and one thread rounds differently.
    threads = str(torch.get_num_threads())
    assert main(["track", str(clip), "--prompts", str(out / "prompts.json"), "--out", str(replay), "--no-video",
                 "--threads", threads]) == 0
    for t in range(FRAMES):
        exported = np.array(Image.open(out / "masks" / f"{t:05d}.png"))
        assert np.array_equal(np.array(Image.open(replay / "masks" / f"{t:05d}.png")), exported), t
        assert set(np.unique(exported)) <= {0, 1, 2}
    assert (out / "overlay.mp4").stat().st_size > 0
