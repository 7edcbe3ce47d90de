"""Frame sources (files, folders, webcams, RTSP) and sinks (overlay videos, mask files)."""
from __future__ import annotations

import os
from pathlib import Path

from .folder import FrameFolder
from .source import Frame, FrameSource, SeekableSource, SourceError
from .video_file import VideoFile


def open_video(path: str | os.PathLike, fps: float | None = None) -> SeekableSource:
    """A folder of frames or a video file, with random access."""
    path = Path(path)
    if path.is_dir():
        return FrameFolder(path, fps=fps)
    return VideoFile(path)


__all__ = ["Frame", "FrameFolder", "FrameSource", "SeekableSource", "SourceError", "VideoFile", "open_video"]
