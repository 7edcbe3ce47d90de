"""A video file (or a folder of frames) played as a live source at its own frame rate: frames are released
on the file's clock, and a consumer slower than that gets the newest one, the others dropped and counted,
as from a camera. For trying ``vos live`` on recorded footage, and for reproducible live benchmarks."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import numpy as np

from .latest import LatestFrameReader, LiveSource
from .source import SeekableSource, SourceError

DEFAULT_FPS = 30.0  # a folder of frames has no rate of its own


class PacedVideo(LiveSource):
    """``path`` (a video file or a frame folder, see :func:`streams.open_video`) released in real time at
    ``fps`` frames per second (default: the file's own, 30 for a folder without one). The stream ends with
    the file; a frame that cannot be decoded ends it too, reported through ``on_event``."""

    def __init__(self, path: str | os.PathLike, fps: float | None = None,
                 on_event: Callable[[str], None] | None = None) -> None:
        from . import open_video

        self.name = str(path)
        self._video: SeekableSource = open_video(path)
        self.size = self._video.size
        self.fps = float(fps or self._video.fps or DEFAULT_FPS)
        if not self.fps > 0:
            raise SourceError(f"{self.name}: frame rate must be positive, got {fps}")
        self._on_event = on_event or (lambda message: None)
        self._reader = LatestFrameReader(self._frames, self.name, backoff=None, on_event=self._on_event)

    def _frames(self) -> Iterator[np.ndarray]:
        started = time.monotonic()
        for index in range(len(self._video)):
            delay = started + index / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                image = self._video.read(index).image
            except SourceError as exc:
                self._on_event(f"{self.name}: ended early ({exc})")
                return
            yield image

    def close(self) -> None:
        super().close()
        self._video.close()
