"""``vos app`` served on a free loopback port for the tests, and a small HTTP client for its API."""
from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np

import vos
from vos.app import App, AppServer


@contextlib.contextmanager
def running_app(video, load_model=None, checkpoint=None):
    """Serve ``video`` (the embedded model unless ``load_model`` says otherwise) until the block ends."""
    app = App(load_model or (lambda c: vos.load_model(c)), None if video is None else str(video), checkpoint)
    server = AppServer(app, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Client(server.url)
    finally:
        server.shutdown()
        server.server_close()
        app.close()


class Client:
    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path.lstrip("/"), json.dumps(body or {}).encode(),
                                         {"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def ok(self, path: str, body: dict | None = None) -> dict:
        status, state = self.post(path, body)
        assert status == 200, state
        return state

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path.lstrip("/")) as response:
            return response.read()

    def state(self) -> dict:
        return json.loads(self.get("/api/state"))

    def layer(self, frame: int) -> np.ndarray:
        """The RGBA mask layer the page draws on a frame."""
        return cv2.cvtColor(cv2.imdecode(np.frombuffer(self.get(f"/api/masks/{frame}.png"), np.uint8),
                                         cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)

    def wait_job(self, timeout: float = 120) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            job = self.state()["job"]
            if job is not None and job["state"] != "running":
                return job
            time.sleep(0.1)
        raise TimeoutError("the job did not finish")


def object_pixels(layer: np.ndarray, obj_id: int) -> np.ndarray:
    """``(H, W)`` where the layer shows object ``obj_id`` (its colour, any opacity)."""
    from vos.app.session import colour

    return (layer[..., 3] > 0) & np.all(layer[..., :3] == colour(obj_id), axis=-1)
