"""A reader thread that keeps only the newest frame of a live source, so that a consumer slower than the
source never falls behind: frames it had no time for are dropped and counted. When the source fails
(camera unplugged, network stream cut, server restarted) the thread reopens it with exponential backoff
and records the gap, without ending the run."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .redact import redact_url
from .source import Frame, FrameSource, SourceError


@dataclass
class StreamStats:
    """Counters of a live source: frames decoded, delivered and dropped (replaced by a newer one before
    being read), reconnections, and the gaps (seconds without frames) they caused."""

    decoded: int = 0
    delivered: int = 0
    dropped: int = 0
    reconnects: int = 0
    gaps: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Backoff:
    """Reconnection delays: ``initial`` seconds, doubled after each failure up to ``maximum``;
    ``max_attempts`` failures in a row end the stream (``None``: never give up)."""

    initial: float = 0.5
    maximum: float = 8.0
    max_attempts: int | None = None

    def delays(self) -> Iterator[float]:
        delay, attempt = self.initial, 0
        while self.max_attempts is None or attempt < self.max_attempts:
            yield delay
            delay = min(delay * 2, self.maximum)
            attempt += 1


class LatestFrameReader:
    """Runs ``open_frames()`` (a fresh iterator of RGB images per connection) in a thread.

    :meth:`get` returns the newest frame not yet returned, waiting for one if needed. Frame indices count
    every decoded frame, so skipped indices are the dropped frames; ``captured_at`` is the wall-clock time
    (``time.time()``) at which the frame was decoded, for capture-to-result latency (a live stream has no
    media time vos could trust across reconnections, so ``media_time`` stays ``None``).
    """

    def __init__(self, open_frames: Callable[[], Iterator[np.ndarray]], name: str,
                 backoff: Backoff | None = Backoff(), on_event: Callable[[str], None] | None = None) -> None:
        self._open = open_frames
        self.name = name
        self.backoff = backoff
        self.stats = StreamStats()
        self._on_event = on_event or (lambda message: None)
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken = -1
        self._finished = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader:{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        index = 0
        failures = None  # the backoff delays of the current run of failures
        lost_at = None
        try:
            while not self._stop.is_set():
                try:
                    for image in self._open():
                        if lost_at is not None:
                            gap = time.time() - lost_at
                            self.stats.gaps.append(gap)
                            self.stats.reconnects += 1
                            self._on_event(f"{self.name}: reconnected after {gap:.1f} s")
                            lost_at = None
                        failures = None
                        self._publish(Frame(index, image, captured_at=time.time()))
                        index += 1
                        if self._stop.is_set():
                            return
                    message = "stream ended"
                except (SourceError, OSError, EOFError) as exc:
                    message = str(exc)
                except Exception as exc:  # decoder errors come as many types; the stream may recover
                    message = f"{type(exc).__name__}: {exc}"
                message = redact_url(message)  # library messages may quote the URL
                if self.backoff is None or self._stop.is_set():
                    if self.stats.decoded == 0 and self.backoff is None:
                        raise SourceError(f"{self.name}: {message}")
                    return
                if lost_at is None:
                    lost_at = time.time()
                    self._on_event(f"{self.name}: lost ({message}); reconnecting")
                failures = failures or self.backoff.delays()
                delay = next(failures, None)
                if delay is None:
                    raise SourceError(f"{self.name}: gave up reconnecting ({message})")
                self._stop.wait(delay)
        except BaseException as exc:
            self._error = exc
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._latest is not None and self._latest.index > self._taken:
                self.stats.dropped += 1
            self._latest = frame
            self.stats.decoded += 1
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        """The newest unread frame; ``None`` when the stream has ended (or ``timeout`` passed)."""
        with self._cond:
            ready = self._cond.wait_for(
                lambda: (self._latest is not None and self._latest.index > self._taken) or self._finished, timeout
            )
            if self._latest is not None and self._latest.index > self._taken:
                self._taken = self._latest.index
                self.stats.delivered += 1
                return self._latest
            if ready and self._error is not None:
                raise self._error
            return None

    @property
    def ended(self) -> bool:
        """The stream has ended (or failed: :meth:`get` raises why) and every frame has been read."""
        with self._cond:
            return self._finished and (self._latest is None or self._latest.index <= self._taken)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class LiveSource(FrameSource):
    """A source read by a :class:`LatestFrameReader` (set as ``_reader`` by subclasses): iterating or
    :meth:`read` gives the newest frame, never a backlog."""

    _reader: LatestFrameReader

    @property
    def stats(self) -> StreamStats:
        return self._reader.stats

    def read(self, timeout: float | None = None) -> Frame | None:
        """The newest frame not yet read; ``None`` once the stream has ended (or after ``timeout``)."""
        return self._reader.get(timeout)

    @property
    def ended(self) -> bool:
        """Every frame has been read and no more will come (:meth:`read` then returns ``None``, or raises
        why the stream failed)."""
        return self._reader.ended

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self._reader.get()) is not None:
            yield frame

    def close(self) -> None:
        self._reader.close()
