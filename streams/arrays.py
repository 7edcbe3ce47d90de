"""Frames already in memory (a decoded clip, an image, generated frames) as a seekable video."""
from __future__ import annotations

import numpy as np

from .source import Frame, SeekableSource, SourceError


class FrameArray(SeekableSource):
    """``frames (T, H, W, 3)`` RGB ``uint8`` (or a list of such images of one size) served in order."""

    def __init__(self, frames, fps: float | None = None) -> None:
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or not len(frames):
            raise SourceError(f"expected frames of shape (T, H, W, 3) uint8 RGB, got {frames.dtype} {frames.shape}")
        self.frames = frames
        self.size = tuple(frames.shape[1:3])
        self.fps = fps

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, index: int) -> Frame:
        return Frame(index, self.frames[index], media_time=index / self.fps if self.fps else None)
