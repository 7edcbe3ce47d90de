"""Frame sources (files, folders, webcams, RTSP) and sinks (overlay videos, mask files)."""
from __future__ import annotations

import os
from pathlib import Path

from .arrays import FrameArray
from .folder import FrameFolder
from .latest import Backoff, LiveSource, StreamStats
from .network import NetworkStream, is_network_url, redact_url
from .source import Frame, FrameSource, SeekableSource, SourceError
from .video_file import VideoFile
from .webcam import Webcam


def open_video(path: str | os.PathLike, fps: float | None = None) -> SeekableSource:
    """A folder of frames or a video file, with random access."""
    if is_network_url(str(path)):
        raise SourceError(f"{redact_url(str(path))}: a network stream has no random access; open it as a live "
                          "source (vos live, streams.open_live)")
    path = Path(path)
    if path.is_dir():
        return FrameFolder(path, fps=fps)
    return VideoFile(path)


def open_live(spec: str | int, **options) -> FrameSource:
    """A live source from a command-line spec: a webcam index (``0``), a device path (``/dev/video0``) or
    a network URL (``rtsp://...``); ``options`` go to :class:`Webcam` or :class:`NetworkStream`."""
    text = str(spec)
    if is_network_url(text):
        return NetworkStream(text, **options)
    if text.isdigit():
        return Webcam(int(text), **options)
    if text.startswith("/dev/"):
        return Webcam(text, **options)
    raise SourceError(f"{text}: not a webcam index, device path or stream URL (use 'vos track' for video files)")


__all__ = [
    "Backoff", "Frame", "FrameArray", "FrameFolder", "FrameSource", "LiveSource", "NetworkStream", "SeekableSource",
    "SourceError", "StreamStats", "VideoFile", "Webcam", "open_live", "open_video", "redact_url",
]
