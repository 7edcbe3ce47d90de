"""The one interface every frame source implements: an iterator of :class:`Frame`, closed cleanly."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


class SourceError(RuntimeError):
    """A source could not be opened or a frame could not be read; the message names which."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``image`` is ``(H, W, 3)`` RGB ``uint8``.

    Two clocks, each with one meaning, either ``None`` when the source does not know it:
    ``media_time`` is the frame's position in the video in seconds (a file's presentation time, or
    ``index / fps`` for frames without one), ``captured_at`` the wall-clock time (``time.time()``) at which
    a live frame was decoded, for capture-to-result latency.
    """

    index: int
    image: np.ndarray
    media_time: float | None = None
    captured_at: float | None = None


class FrameSource(ABC):
    """Frames in order. ``size`` is ``(height, width)`` and ``fps`` the nominal rate, ``None`` if unknown."""

    size: tuple[int, int] | None = None
    fps: float | None = None

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None:
        """Release the underlying file, device or connection. Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SeekableSource(FrameSource):
    """A source of known length with random access, as the offline predictor needs."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int) -> Frame:
        """Frame ``index`` (``0 <= index < len(self)``)."""

    def squashed(self, index: int, size: int) -> np.ndarray | None:
        """Frame ``index`` as ``(size, size, 3)`` RGB ``uint8``, squashed to a square by the source's own
        reader, or ``None`` (the default) where the consumer resizes ``read(index).image`` itself. A reader
        with its own scaler (the official SAM 2 loader's pixels, a hardware decoder) offers it here."""
        return None

    def __getitem__(self, index: int) -> Frame:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is out of range: the source has {len(self)} frames")
        return self.read(index)

    def __iter__(self) -> Iterator[Frame]:
        for index in range(len(self)):
            yield self.read(index)
