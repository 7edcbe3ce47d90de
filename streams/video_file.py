"""Video files through PyAV, with frame-accurate random access and no full preload."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import av

from .source import Frame, SeekableSource, SourceError


class VideoFile(SeekableSource):
    """Frames of a video file, decoded on demand.

    Sequential reads decode straight on; a jump seeks to the preceding keyframe and decodes up to the
    target, keeping what it decoded in a small cache so that reading backwards costs one seek per
    group of pictures rather than per frame.
    """

    def __init__(self, path: str | os.PathLike, cache_frames: int = 64, threads: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: no such video file")
        try:
            self._container = av.open(str(self.path))
        except av.FFmpegError as exc:
            raise SourceError(f"{self.path}: cannot be opened as a video ({exc})") from None
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        if threads:
            self._stream.thread_type = "AUTO"
        self._pts = self._scan_timestamps()
        if not self._pts:
            self.close()
            raise SourceError(f"{self.path}: contains no video frames")
        self._index_of = {pts: i for i, pts in enumerate(self._pts)}
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.size = (self._stream.codec_context.height, self._stream.codec_context.width)
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._cache_frames = max(cache_frames, 1)
        self._decoder = None
        self._next = None  # index the running decoder yields next

    def _scan_timestamps(self) -> list[int]:
        """Presentation timestamps of every frame, from the packets alone (nothing is decoded)."""
        try:
            pts = [p.pts for p in self._container.demux(self._stream) if p.pts is not None and p.size > 0]
        except av.FFmpegError as exc:
            raise SourceError(f"{self.path}: the container is corrupt ({exc})") from None
        self._container.seek(0, stream=self._stream)
        return sorted(set(pts))

    def __len__(self) -> int:
        return len(self._pts)

    def read(self, index: int) -> Frame:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        if self._container is None:  # PyAV crashes the interpreter on a closed container's decoder
            raise SourceError(f"{self.path}: frame {index} was read after the video was closed")
        if self._decoder is None or self._next is None or not (self._next <= index < self._next + 8):
            self._seek(index)
        while True:
            frame = self._decode_next(index)
            if frame.index == index:
                return frame

    def _seek(self, index: int) -> None:
        self._container.seek(self._pts[index], stream=self._stream, backward=True, any_frame=False)
        self._decoder = self._container.decode(self._stream)
        self._next = None

    def _decode_next(self, target: int) -> Frame:
        try:
            decoded = next(self._decoder)
        except StopIteration:
            self._decoder = None
            raise SourceError(f"{self.path}: frame {target} could not be decoded (the stream ended early)") from None
        except av.FFmpegError as exc:
            self._decoder = None
            raise SourceError(f"{self.path}: frame {target} is corrupt ({exc})") from None
        index = self._index_of.get(decoded.pts)
        if index is None:  # a frame without a known timestamp: count on from the previous one
            index = self._next if self._next is not None else target
        self._next = index + 1
        media_time = float(decoded.pts * self._stream.time_base) if decoded.pts is not None else None
        frame = Frame(index, decoded.to_ndarray(format="rgb24"), media_time=media_time)
        self._cache[index] = frame
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
        if index > target:
            raise SourceError(f"{self.path}: frame {target} could not be decoded (seeking skipped it)")
        return frame

    def close(self) -> None:
        if getattr(self, "_container", None) is not None:
            self._container.close()
            self._container = None
            self._decoder = None
