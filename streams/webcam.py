"""Webcams: OpenCV's ``VideoCapture`` (a device index or a device path), or PyAV's v4l2 input on Linux,
read live newest-frame-first like network streams."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import cv2
import numpy as np

from .latest import Backoff, LatestFrameReader, LiveSource
from .source import SourceError


class Webcam(LiveSource):
    """A camera. ``device`` is an index (``0``) or a path (``/dev/video0``); ``backend`` is ``"opencv"``
    or ``"v4l2"`` (PyAV; lets the camera deliver compressed MJPEG at high resolutions without OpenCV's
    conversions). ``size = (H, W)`` and ``fps`` are requests the camera may round."""

    def __init__(
        self,
        device: int | str = 0,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        backend: str = "opencv",
        backoff: Backoff | None = Backoff(max_attempts=20),
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if backend not in ("opencv", "v4l2"):
            raise ValueError(f"backend must be 'opencv' or 'v4l2', got {backend!r}")
        self.device, self.backend = device, backend
        self.name = f"camera {device}"
        self._request = (size, fps)
        first = self._open_opencv() if backend == "opencv" else self._open_v4l2()
        self._pending = first
        self._reader = LatestFrameReader(self._frames, self.name, backoff, on_event)

    def _open_opencv(self):
        capture = cv2.VideoCapture(self.device)
        if not capture.isOpened():
            raise SourceError(f"{self.name}: cannot be opened with OpenCV")
        size, fps = self._request
        if size:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[0])
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[1])
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        self.fps = capture.get(cv2.CAP_PROP_FPS) or None
        return capture

    def _open_v4l2(self):
        import av

        size, fps = self._request
        options = {}
        if size:
            options["video_size"] = f"{size[1]}x{size[0]}"
        if fps:
            options["framerate"] = str(fps)
        path = self.device if isinstance(self.device, str) else f"/dev/video{self.device}"
        try:
            container = av.open(path, format="v4l2", options=options)
        except av.FFmpegError as exc:
            raise SourceError(f"{self.name}: cannot be opened with v4l2 ({exc})") from None
        stream = container.streams.video[0]
        self.size = (stream.codec_context.height, stream.codec_context.width)
        self.fps = float(stream.average_rate) if stream.average_rate else None
        return container

    def _frames(self) -> Iterator[np.ndarray]:
        handle, self._pending = self._pending, None
        if self.backend == "opencv":
            capture = handle or self._open_opencv()
            try:
                while True:
                    ok, image = capture.read()
                    if not ok:
                        return
                    yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            finally:
                capture.release()
        else:
            container = handle or self._open_v4l2()
            try:
                for frame in container.decode(video=0):
                    yield frame.to_ndarray(format="rgb24")
            finally:
                container.close()
