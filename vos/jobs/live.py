"""``vos live``: track prompted objects in a live source until stopped, writing an overlay video and
reporting frames per second, capture-to-mask latency and dropped frames."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streams import FrameSource
from streams.overlay import Annotator

from ..model.interface import TrackingModel
from ..tracking.core import TrackerSettings
from ..tracking.everything import EverythingSettings, EverythingTracker
from ..tracking.live_tracker import LiveTracker
from ..tracking.prompts import FramePrompt, PromptError, merge_prompts
from .segment import cli_option
from .sinks import OverlaySink, Sinks


@dataclass
class LiveReport:
    """``latencies`` are seconds from a frame's capture (decode) to its mask; ``dropped`` frames were
    replaced by newer ones before the tracker could take them; ``gaps`` are reconnection outages."""

    frames: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0
    reconnects: int = 0
    gaps: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def latency(self, q: float) -> float:
        return float(np.quantile(self.latencies, q)) if self.latencies else float("nan")

    def line(self) -> str:
        return (f"{self.frames} frames, {self.fps:.1f} fps, latency median {self.latency(0.5) * 1000:.0f} ms, "
                f"p95 {self.latency(0.95) * 1000:.0f} ms, dropped {self.dropped}, reconnects {self.reconnects}")


def live_settings(precision: str = "float32") -> TrackerSettings:
    """The settings of ``vos live``'s job, decided here once: :meth:`TrackerSettings.live` (re-prompts persist
    as prompted memories, memory stays bounded)."""
    return TrackerSettings.live(precision=precision)


def check_live_prompts(prompts: list[FramePrompt], everything: bool = False) -> list[FramePrompt]:
    """Live prompts, merged per object (:func:`merge_prompts`): all for the first frame, and some unless the
    objects are found by ``everything``."""
    prompts = merge_prompts(prompts)
    if everything and prompts:
        raise PromptError("--everything finds the objects itself: give no clicks, boxes or masks with it")
    if not prompts and not everything:
        raise PromptError("nothing to track: give at least one click, box or mask for the first frame")
    late = [p for p in prompts if p.frame != 0]
    if late:
        raise PromptError(f"object {late[0].obj_id}: live prompts are for the first frame; got frame {late[0].frame}")
    return prompts


def _display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_live(
    model: TrackingModel,
    source: FrameSource,
    prompts: list[FramePrompt],
    out: str | os.PathLike | None = None,
    *,
    show: bool | None = None,
    max_frames: int | None = None,
    report_every: float = 1.0,
    log=print,
    settings: TrackerSettings | None = None,
    everything: EverythingSettings | None = None,
) -> LiveReport:
    """Track until the source ends, ``max_frames`` frames, or Ctrl-C. Prompts apply to the first frame
    (their ``frame`` must be 0). The overlay video and the window are optional; files are closed cleanly
    however the run ends. ``settings`` default to :func:`live_settings`. With ``everything``, the
    objects are found by :class:`vos.tracking.everything.EverythingTracker` instead of prompts."""
    prompts = check_live_prompts(prompts, everything is not None)
    show = _display_available() if show is None else show
    settings = settings or live_settings()
    tracker = LiveTracker(model, settings) if everything is None else EverythingTracker(model, everything, settings)
    annotator = Annotator()
    report = LiveReport()
    with Sinks(OverlaySink(Path(out), fps=source.fps, annotator=annotator) if out else None) as sinks:
        started = last_report = time.time()
        try:
            for frame, result in tracker.track(source, {p.obj_id: p.prompt for p in prompts} or None):
                now = time.time()
                if frame.captured_at is not None:
                    report.latencies.append(now - frame.captured_at)
                report.frames += 1
                sinks.write(frame, result)
                if show:
                    _show(annotator(frame.image, result.detections()))
                if now - last_report >= report_every:
                    update_report(report, source, started)
                    log(report.line())
                    last_report = now
                if max_frames is not None and report.frames >= max_frames:
                    break
        except KeyboardInterrupt:
            pass
        finally:
            update_report(report, source, started)
            if show:
                import cv2

                cv2.destroyAllWindows()
    if isinstance(tracker, EverythingTracker) and tracker.searches and tracker.next_id == 1:
        log(f"0 objects found in {tracker.search_summary(cli_option)}")
    return report


def update_report(report: LiveReport, source: FrameSource, started: float) -> None:
    """The report's time since ``started`` and the source's counters (a live source's), as of now."""
    report.seconds = time.time() - started
    stats = getattr(source, "stats", None)
    if stats is not None:
        report.dropped, report.reconnects, report.gaps = stats.dropped, stats.reconnects, list(stats.gaps)


def _show(image: np.ndarray) -> None:
    import cv2

    cv2.imshow("vos live", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
        raise KeyboardInterrupt


def live(
    model: TrackingModel,
    source: str | int,
    prompts: list[FramePrompt],
    out: str | os.PathLike | None = None,
    *,
    transport: str | None = None,
    max_reconnects: int | None = None,
    log=print,
    **options,
) -> LiveReport:
    """``vos live``: open ``source`` (a webcam index, a device path or a stream URL; ``transport``, tcp or
    udp, for RTSP streams only), reconnecting with backoff until ``max_reconnects`` failures in a row (default:
    never), and :func:`run_live` on it; ``options`` go to :func:`run_live`. ``log`` gets what the source
    reports (connections, reconnections) and a line naming what is read."""
    from streams import Backoff, open_live
    from streams.network import is_network_url

    opened = {"backoff": Backoff(max_attempts=max_reconnects), "on_event": log}
    if transport:
        if not is_network_url(str(source)):
            raise ValueError(f"--transport is for network streams, not {source!r}")
        opened["transport"] = transport
    with open_live(source, **opened) as stream:
        log(f"reading {getattr(stream, 'name', source)}: {stream.size[1]}x{stream.size[0]}"
            + (f" at {stream.fps:g} fps" if stream.fps else ""))
        return run_live(model, stream, prompts, out, log=log, **options)
