"""Network streams (RTSP, RTMP, HTTP, UDP) through PyAV, tuned for low latency, read live.

Credentials in URLs never reach messages or logs: :func:`redact_url` replaces them.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import av
import numpy as np

from .latest import Backoff, LatestFrameReader, LiveSource
from .redact import redact_url, remember_secrets
from .source import SourceError


def is_network_url(spec: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", spec)) and not spec.startswith("file://")


class NetworkStream(LiveSource):
    """A live network stream, newest frame first (see :class:`LatestFrameReader`).

    Args:
        url: ``rtsp://``, ``rtmp://``, ``http://``, ``udp://`` ...
        transport: RTSP transport, ``"tcp"`` (default: no packet loss) or ``"udp"``.
        open_timeout, read_timeout: seconds before opening or a read is given up (then reconnect).
        backoff: reconnection policy; ``None`` ends the stream at the first failure.
        on_event: called with a message on each loss and reconnection.
    """

    def __init__(
        self,
        url: str,
        transport: str = "tcp",
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        backoff: Backoff | None = Backoff(),
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if transport not in ("tcp", "udp"):
            raise ValueError(f"transport must be 'tcp' or 'udp', got {transport!r}")
        self.url = url
        remember_secrets(url)
        self.name = redact_url(url)
        self.transport = transport
        self.timeouts = (open_timeout, read_timeout)
        self._first = self._connect()  # fail now, clearly, if the stream cannot be opened at all
        stream = self._first.streams.video[0]
        self.size = (stream.codec_context.height, stream.codec_context.width)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self._reader = LatestFrameReader(self._frames, self.name, backoff, on_event)

    def _options(self) -> dict[str, str]:
        options = {"fflags": "nobuffer", "flags": "low_delay", "max_delay": "0", "reorder_queue_size": "0"}
        if self.url.lower().startswith("rtsp"):
            options["rtsp_transport"] = self.transport
        return options

    def _connect(self):
        started = time.monotonic()
        try:
            container = av.open(self.url, options=self._options(), timeout=self.timeouts)
        except av.FFmpegError as exc:
            # A server that accepts the connection and then says nothing (or nothing the demuxer
            # understands) makes FFmpeg give up at the open timeout with "Invalid data"; say what happened.
            if time.monotonic() - started >= 0.9 * self.timeouts[0]:
                reason = f"no answer from the server within the {self.timeouts[0]:g} s open timeout"
            else:
                reason = exc.strerror or str(exc)
            raise SourceError(f"{self.name}: cannot be opened ({redact_url(reason)})") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{self.name}: has no video stream")
        return container

    def _frames(self) -> Iterator[np.ndarray]:
        container, self._first = (self._first or self._connect()), None
        try:
            stream = container.streams.video[0]
            stream.codec_context.flags |= av.codec.context.Flags.low_delay
            stream.thread_type = "SLICE"  # frame threading would hold frames back
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise SourceError(f"{self.name}: {type(exc).__name__}: {redact_url(str(exc))}") from None
        finally:
            container.close()
