"""Frame sources (files, folders, webcams, RTSP) and what writes frames and masks (overlay videos, mask files).

Names are imported on first use, so that a module of this package (``streams.files``, ``streams.masks``)
costs only what it imports itself: scoring masks, which writes through ``streams.files``, loads no video
decoder.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .source import FrameSource, SeekableSource

_EXPORTS = {
    ".arrays": ["FrameArray"],
    ".folder": ["FrameFolder"],
    ".latest": ["Backoff", "LiveSource", "StreamStats"],
    ".network": ["NetworkStream", "is_network_url"],
    ".paced": ["PacedVideo"],
    ".redact": ["redact_url"],
    ".source": ["Frame", "FrameSource", "SeekableSource", "SourceError"],
    ".video_file": ["VideoFile"],
    ".webcam": ["Webcam"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'streams' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def open_video(path: str | os.PathLike, fps: float | None = None) -> SeekableSource:
    """A folder of frames or a video file, with random access."""
    from .folder import FrameFolder
    from .network import is_network_url
    from .redact import redact_url
    from .source import SourceError
    from .video_file import VideoFile

    if is_network_url(str(path)):
        raise SourceError(f"{redact_url(str(path))}: a network stream has no random access; open it as a live "
                          "source (vos live, streams.open_live)")
    path = Path(path)
    if path.is_dir():
        return FrameFolder(path, fps=fps)
    return VideoFile(path)


def open_live(spec: str | int, **options) -> FrameSource:
    """A live source from a command-line spec: a webcam index (``0``), a device path (``/dev/video0``), a
    network URL (``rtsp://...``) or a video file or frame folder, played at its own frame rate
    (:class:`PacedVideo`); ``options`` go to :class:`Webcam` or :class:`NetworkStream` (a file, which
    never reconnects, takes only ``on_event``)."""
    from .network import NetworkStream, is_network_url
    from .paced import PacedVideo
    from .source import SourceError
    from .webcam import Webcam

    text = str(spec)
    if is_network_url(text):
        return NetworkStream(text, **options)
    if text.isdigit():
        return Webcam(int(text), **options)
    if text.startswith("/dev/"):
        return Webcam(text, **options)
    if _exists(text):
        return PacedVideo(text, on_event=options.get("on_event"))
    raise SourceError(f"{text}: not a webcam index, device path, stream URL or existing video file")


def _exists(text: str) -> bool:
    try:
        return Path(text).exists()
    except OSError:  # a name too long to be a file, say
        return False


__all__ = sorted([*_WHERE, "open_live", "open_video"])
