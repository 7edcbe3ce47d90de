"""``vos live --sources FILE.json``: several live sources tracked by one model in one process.

The sources file is a JSON list of ``{"source": ..., "prompts": ..., "out": ...}``: ``source`` is what ``vos
live`` takes (a webcam index, a device path, a stream URL, or a video file or frame folder played at its own
frame rate), ``prompts`` a list in the ``--prompts`` format or the path of such a file (frame 0 only), and
``out`` the overlay video to write (optional); paths are relative to the file's folder.

Each step takes the newest frame of every source that has one and runs them through
:class:`vos.tracking.live_tracker.MultiStreamTracker` (one image-encoder batch), the sources split into as many
groups as the CPU threads, stepped side by side (:func:`run_live_sources`). Each source keeps its own
memory bank, reconnection with backoff, overlay video and report (fps, capture-to-mask latency, dropped
frames); one that stalls only misses steps, and one that ends, fails or sends a frame of another size is
closed and reported by its redacted name while the others go on.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import torch

from streams import FrameSource
from streams.latest import LiveSource
from streams.overlay import Annotator
from streams.redact import redact_url, remember_secrets

from ..errors import one_line, shown
from ..model.compiled import is_compiled
from ..model.interface import TrackingModel
from ..tracking.core import TrackerSettings
from ..tracking.live_tracker import FrameSizeError, MultiStreamTracker
from ..tracking.prompts import (
    FramePrompt,
    PromptError,
    prompts_from_json,
    read_prompt_file,
)
from .live import LiveReport, check_live_prompts, live_settings, update_report
from .sinks import OverlaySink

KEYS = ("source", "prompts", "out")


class SourcesError(ValueError):
    """A mistake in a sources file, named by its file and entry index; nothing was run."""


@dataclass(frozen=True)
class SourceEntry:
    """One entry of a sources file: ``source`` as ``vos live`` takes it, its first-frame prompts, the overlay
    video to write (or ``None``), and ``where`` it was given (``FILE.json, source 2``)."""

    source: str
    prompts: list[FramePrompt]
    out: Path | None
    where: str

    @property
    def name(self) -> str:
        """The source as messages show it: credentials in URLs replaced."""
        return redact_url(self.source)


def read_sources_file(path: str | os.PathLike) -> list[SourceEntry]:
    """The entries of a sources file, every one checked (keys, prompts, distinct outputs) before anything is
    opened; a :class:`SourcesError` names the file and the entry's index (from 0)."""
    path = Path(path)
    try:
        value = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise SourcesError(f"{path}: not valid JSON: "
                           f"{'nested too deeply' if isinstance(exc, RecursionError) else exc}") from None
    if not isinstance(value, list) or not value:
        raise SourcesError(f"{path}: expected a non-empty list of sources "
                           '[{"source": ..., "prompts": ..., "out": ...}, ...], got ' + shown(value))
    entries, outs = [], {}
    for i, item in enumerate(value):
        entry = _entry(path, i, item)
        if entry.out is not None:
            first = outs.setdefault(entry.out.resolve(), i)
            if first != i:
                raise SourcesError(f"{entry.where}: out {entry.out} is source {first}'s output too; each source "
                                   "needs its own")
        entries.append(entry)
    return entries


def _entry(path: Path, index: int, item) -> SourceEntry:
    where = f"{path}, source {index}"
    if not isinstance(item, dict):
        raise SourcesError(f"{where}: expected an object with {', '.join(KEYS)}, got {shown(item)}")
    missing = [k for k in ("source", "prompts") if k not in item]
    unknown = sorted(set(item) - set(KEYS))
    if missing or unknown:
        raise SourcesError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else [])
            + ([f"unknown keys {unknown} (allowed: {list(KEYS)})"] if unknown else [])))
    source = item["source"]
    if isinstance(source, bool) or not isinstance(source, (str, int)) or source == "":
        raise SourcesError(f"{where}: source must be a webcam index, a device path, a stream URL or a video file, "
                           f"got {shown(source)}")
    source = str(source)
    remember_secrets(source)  # hidden from here on, in every message
    base = path.parent
    from streams.network import is_network_url

    if not (is_network_url(source) or source.isdigit() or source.startswith("/dev/")):
        source = str(base / source)  # a file played live, relative to the sources file
    out = item.get("out")
    if out is not None and (not isinstance(out, str) or not out):
        raise SourcesError(f"{where}: out must be the path of the video to write, got {shown(out)}")
    out = None if out is None else base / out
    if out is not None and out.is_dir():
        raise SourcesError(f"{where}: out {out} is a folder; name the video file to write (e.g. live.mp4)")
    try:
        spec = item["prompts"]
        prompts = read_prompt_file(base / spec) if isinstance(spec, str) else prompts_from_json(spec, where, base)
        prompts = check_live_prompts(prompts)
    except PromptError as exc:
        text = redact_url(str(exc))
        raise SourcesError(text if text.startswith(where) else f"{where}: {text}") from None
    except OSError as exc:  # a prompt file or mask PNG that cannot be read
        raise SourcesError(f"{where}: {one_line(exc)}") from None
    return SourceEntry(source, prompts, out, where)


@dataclass
class SourceReport(LiveReport):
    """:class:`LiveReport` of one source of several, by its redacted ``name``; ``error`` says why it stopped
    before the others (``None`` if it did not)."""

    name: str = ""
    error: str | None = None

    def line(self) -> str:
        return f"{self.name}: " + super().line() + (f"; stopped: {self.error}" if self.error else "")


@dataclass
class SourcesReport:
    """The run's reports, one per source in the order given; ``steps`` and ``batch`` count the model's steps
    and the frames they took in all (``batch / steps`` frames per image-encoder call)."""

    sources: list[SourceReport]
    seconds: float = 0.0
    steps: int = 0
    batch: int = 0
    memory_bytes: list[int] = field(default_factory=list)  # sampled each report, every source's banks together

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.sources)

    @property
    def fps(self) -> float:
        """Frames per second over all sources."""
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> list[SourceReport]:
        return [r for r in self.sources if r.error]

    def line(self) -> str:
        mean = self.batch / self.steps if self.steps else 0.0
        return (f"all {len(self.sources)} sources: {self.frames} frames, {self.fps:.1f} fps, "
                f"{mean:.1f} frames per step")


class _Feed:
    """One source as the loop polls it: the newest frame of a live source, without waiting, or the next
    frame of any other (a file read in order, frame arrays in tests), and whether it has ended."""

    def __init__(self, source: FrameSource) -> None:
        self.source = source
        self.live = isinstance(source, LiveSource)
        self._frames: Iterator | None = None if self.live else iter(source)
        self.ended = False

    def poll(self):
        if self.live:
            frame = self.source.read(timeout=0)
            self.ended = frame is None and self.source.ended
            return frame
        frame = next(self._frames, None)
        self.ended = frame is None
        return frame


def run_live_sources(
    model: TrackingModel,
    sources: list[tuple[str, FrameSource, list[FramePrompt], str | os.PathLike | None]],
    *,
    max_frames: int | None = None,
    max_seconds: float | None = None,
    report_every: float = 1.0,
    log: Callable[[str], None] = print,
    settings: TrackerSettings | None = None,
    batch_frames: bool = True,
    workers: int | None = None,
    idle_wait: float = 0.002,
) -> SourcesReport:
    """Track ``(name, source, first-frame prompts, overlay path or None)`` sources together until each has
    ended, given ``max_frames`` frames, or failed, or ``max_seconds`` have passed, or Ctrl-C. A live source
    gives its newest frame when it has one (a step never waits for a stalled source); any other source gives
    its next frame each step.
    A source that fails, or sends a frame that cannot be tracked (another size, not RGB), is closed, its
    overlay kept whole, and reported by ``name`` with the reason; the others go on. ``settings`` default to
    :func:`live_settings`; ``batch_frames`` as :class:`MultiStreamTracker` takes it.

    The sources are split, in their order, into ``workers`` groups (at most one a source), each tracked by a
    :class:`MultiStreamTracker` of its own in a thread of its own, its steps taking the newest frame of each of
    its sources; reading the sources and writing the overlays stay on the calling thread, while the groups
    compute. Default: on a CPU, as many groups as PyTorch has threads, each group then computing on one
    thread: PyTorch's threads inside one operator wait for each other at every operator, and the stream
    decoders on the same cores stall them all, while groups run side by side (4 sources of the embedded
    model on 2 cores: 26 frames/s on one thread, 40 on two PyTorch threads, 46 in two groups). On a GPU, with
    a runtime that is not PyTorch, or with a compiled model, one group."""
    settings = settings or live_settings()
    prompts = [check_live_prompts(p) for _, _, p, _ in sources]
    count = max(1, min(len(sources), workers or _default_workers(model)))
    groups = [_Group(list(range(len(sources) * g // count, len(sources) * (g + 1) // count)),
                     MultiStreamTracker(model, settings, batch_frames=batch_frames)) for g in range(count)]
    owner = {i: g for g in groups for i in g.sources}
    annotator = Annotator()
    report = SourcesReport([SourceReport(name=name) for name, *_ in sources])
    feeds = {i: _Feed(source) for i, (_, source, _, _) in enumerate(sources)}
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(count, thread_name_prefix="vos-sources",
                              initializer=torch.set_num_threads if count > 1 else None, initargs=(1,) if count > 1 else ())
    with ExitStack() as stack:
        sinks = {i: stack.enter_context(OverlaySink(Path(out), fps=source.fps, annotator=annotator))
                 for i, (_, source, _, out) in enumerate(sources) if out}
        started = last_report = time.time()

        def stop(i: int, error: str | None = None) -> None:
            feeds.pop(i)
            owner[i].tracker.streams.pop(i, None)  # called only while that group is not computing
            r = report.sources[i]
            update_report(r, sources[i][1], started)
            r.error = error
            if i in sinks:
                try:
                    sinks.pop(i).close()
                except OSError as exc:
                    r.error = r.error or f"cannot write {sources[i][3]}: {one_line(exc)}"
            if error:
                log(f"{r.name}: stopped ({error}); the other sources go on")

        def poll(g: _Group) -> dict:
            """The next frame of each of the group's sources that has one; those that fail or end stop."""
            frames = {}
            for i in [i for i in g.sources if i in feeds]:
                try:
                    frame = feeds[i].poll()
                except Exception as exc:  # noqa: BLE001 - whatever a source raises stops it alone
                    stop(i, _reason(exc, report.sources[i].name))
                    continue
                if feeds[i].ended:
                    stop(i)
                elif frame is not None:
                    try:
                        g.tracker.check(i, frame.image, g.first(i, prompts))
                    except (FrameSizeError, PromptError) as exc:
                        stop(i, _reason(exc, f"stream {i},"))
                        continue
                    frames[i] = frame
            return frames

        def finish(g: _Group) -> None:
            """The group's step is done: its frames' results to the overlays and the reports."""
            frames, results, done_at = g.running.result()
            g.running = None
            report.steps += 1
            report.batch += len(frames)
            for i, frame in frames.items():
                r = report.sources[i]
                if frame.captured_at is not None:
                    r.latencies.append(done_at - frame.captured_at)
                r.frames += 1
                if i in sinks:
                    sinks[i].write(frame, results[i])
                if max_frames is not None and r.frames >= max_frames:
                    stop(i)

        try:
            while feeds and (max_seconds is None or time.time() - started < max_seconds):
                moved = False
                for g in groups:
                    if g.running is not None:
                        if not g.running.done():
                            continue
                        finish(g)
                        moved = True
                    frames = poll(g)
                    if frames:
                        g.running = pool.submit(g.step, frames, prompts)
                        moved = True
                now = time.time()
                if now - last_report >= report_every:  # before any source stops and frees its banks
                    report.memory_bytes.append(sum(g.bank_bytes for g in groups))
                    for i in feeds:
                        update_report(report.sources[i], sources[i][1], started)
                        log(report.sources[i].line())
                    last_report = now
                if not moved:
                    running = [g.running for g in groups if g.running is not None]
                    if len(running) == len(groups):  # nothing to poll until a step ends (waking costs the GIL)
                        wait(running, timeout=max(0.0, last_report + report_every - time.time()),
                             return_when=FIRST_COMPLETED)
                    elif running:
                        wait(running, timeout=idle_wait, return_when=FIRST_COMPLETED)
                    elif feeds:
                        time.sleep(idle_wait)
            for g in groups:  # frames taken before the end are tracked and written
                if g.running is not None:
                    finish(g)
        except KeyboardInterrupt:
            pass
        finally:
            pool.shutdown(wait=True)
            if count > 1:
                torch.set_num_threads(threads)  # the workers' count set the process's too
            for i in list(feeds):
                stop(i)
            report.seconds = time.time() - started
    return report


def _default_workers(model: TrackingModel) -> int:
    # ONNX Runtime's sessions keep their own thread pools, a GPU takes one batch best, and torch.compile
    # compiles (and recompiles for new shapes) from one thread at a time: one group there.
    if model.device.type != "cpu" or not isinstance(model, torch.nn.Module) or is_compiled(model):
        return 1
    return torch.get_num_threads()


class _Group:
    """Sources tracked together by one :class:`MultiStreamTracker`, a step at a time in a worker thread:
    ``running`` is the step under way, ``bank_bytes`` the memory banks' size after the last step."""

    def __init__(self, sources: list[int], tracker: MultiStreamTracker) -> None:
        self.sources, self.tracker = sources, tracker
        self.running: Future | None = None
        self.bank_bytes = 0

    def first(self, i: int, prompts: list[list[FramePrompt]]) -> dict | None:
        """Source ``i``'s prompts while its first frame is being tracked."""
        return None if i in self.tracker.streams else {p.obj_id: p.prompt for p in prompts[i]}

    def step(self, frames: dict, prompts: list[list[FramePrompt]]) -> tuple[dict, dict, float]:
        """Run in a worker thread: the frames (by source index), their results, and when those were ready."""
        results = self.tracker.step({i: f.image for i, f in frames.items()}, {i: self.first(i, prompts) for i in frames})
        done_at = time.time()
        self.bank_bytes = self.tracker.memory_bytes()
        return frames, results, done_at


def _reason(exc: BaseException, name: str) -> str:
    """Why a source stopped, in one line without credentials, less the source's name it may start with (the
    report names the source)."""
    return redact_url(one_line(exc)).removeprefix(name).lstrip(": ,")


def live_sources(
    model: TrackingModel,
    entries: list[SourceEntry],
    *,
    transport: str | None = None,
    max_reconnects: int | None = None,
    log: Callable[[str], None] = print,
    **options,
) -> SourcesReport:
    """``vos live --sources``: open every entry's source as ``vos live`` opens one (``transport`` for the
    network streams among them, each reconnecting with its own backoff until ``max_reconnects`` failures in
    a row) and :func:`run_live_sources` on them; ``options`` go there. A source that cannot be opened is
    reported, and the others run; when none can, the first failure is raised."""
    from streams import Backoff, SourceError, open_live
    from streams.network import is_network_url

    opened: dict[int, FrameSource] = {}
    reports: dict[int, SourceReport] = {}
    with ExitStack() as stack:
        for k, entry in enumerate(entries):
            opening = {"backoff": Backoff(max_attempts=max_reconnects), "on_event": log}
            if transport and is_network_url(entry.source):
                opening["transport"] = transport
            try:
                stream = opened[k] = stack.enter_context(open_live(entry.source, **opening))
            except (SourceError, OSError, ValueError) as exc:
                reports[k] = SourceReport(name=entry.name, error=_reason(exc, entry.name))
                log(f"{entry.name}: {reports[k].error}; the other sources go on")
                continue
            log(f"reading {entry.name}: {stream.size[1]}x{stream.size[0]}"
                + (f" at {stream.fps:g} fps" if stream.fps else "") + (f", writing {entry.out}" if entry.out else ""))
        if not opened:
            more = f" (none of the {len(entries)} sources could be opened)" if len(entries) > 1 else ""
            raise SourceError(f"{entries[0].where}: {entries[0].name}: {reports[0].error}{more}")
        running = [(entries[k].name, stream, entries[k].prompts, entries[k].out) for k, stream in opened.items()]
        report = run_live_sources(model, running, log=log, **options)
    reports.update(zip(opened, report.sources))
    report.sources = [reports[k] for k in range(len(entries))]
    return report
