"""A seekable source that remembers its last few decoded frames, so that the tracker and the sinks after it
share one decode of each frame."""
from __future__ import annotations

from collections import OrderedDict

from .source import Frame, SeekableSource


class RecentFrames(SeekableSource):
    """``source`` with its ``keep`` most recently read frames held: reading one of them again costs nothing.
    The tracker reads frame ``i`` to encode it and the sinks read it for the overlay right after."""

    def __init__(self, source: SeekableSource, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.source, self.keep = source, keep
        self.size, self.fps = source.size, source.fps
        self._frames: OrderedDict[int, Frame] = OrderedDict()

    def __len__(self) -> int:
        return len(self.source)

    def read(self, index: int) -> Frame:
        frame = self._frames.get(index)
        if frame is None:
            frame = self._frames[index] = self.source[index]
            while len(self._frames) > self.keep:
                self._frames.popitem(last=False)
        self._frames.move_to_end(index)
        return frame

    def squashed(self, index: int, size: int):
        return self.source.squashed(index, size)

    def close(self) -> None:
        self._frames.clear()
        self.source.close()
