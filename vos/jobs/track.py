"""Offline tracking of a whole video into files: an overlay video and mask PNGs.

Propagation runs forward from the earliest prompted frame to the end, then backward to the first frame,
as SAM 2's ``propagate_in_video`` does in both directions. Masks are written as frames are done. When
the prompts start on frame 0 (the usual case) the overlay is written while tracking, so a run stopped or
killed at frame N leaves masks 0..N-1 and a playable video of at least those frames; otherwise the overlay
follows once the backward pass is done (the masks of the video are then held, bit-packed, in memory).
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from streams import Frame, FrameFolder, SeekableSource, SourceError, open_video
from streams.overlay import join_videos

from ..errors import TrackError
from ..model.interface import TrackingModel
from ..tracking.core import TrackerSettings
from ..tracking.prompts import FramePrompt, PromptError, check_palette_id
from ..tracking.results import FrameResult
from ..tracking.video_predictor import VideoPredictor
from .sinks import OverlaySink, Sink, mask_sink, palette_ids


@dataclass
class TrackOutputs:
    """What a run wrote: the overlay video (or ``None``), the mask folder (or ``None``), frames tracked,
    the frames whose masks are on disk, the frames the overlay holds, and whether a previous run's
    outputs were replaced."""

    overlay: Path | None
    masks: Path | None
    frames: int
    mask_frames: list[int] = field(default_factory=list)
    overlay_frames: int = 0
    replaced: bool = False

    def describe(self) -> str:
        """What is on disk, for messages: ``masks of frames 0-32 in out/masks, out/overlay.mp4 with frames 0-24``."""
        parts = []
        if self.masks is not None:
            parts.append(f"masks of frames {index_ranges(self.mask_frames)} in {self.masks}" if self.mask_frames
                         else f"no masks in {self.masks}")
        if self.overlay is not None:
            if not self.overlay.exists():
                parts.append(f"no {self.overlay.name}")
            elif self.overlay_frames:
                parts.append(f"{self.overlay} with frames 0-{self.overlay_frames - 1}")
            else:
                parts.append(f"{self.overlay} with no frames")
        return ", ".join(parts) or "nothing"


class TrackInterrupted(KeyboardInterrupt):
    """Ctrl-C during tracking: the outputs were closed cleanly; ``kept`` says what they hold."""

    def __init__(self, message: str, kept: TrackOutputs) -> None:
        super().__init__(message)
        self.kept = kept


def index_ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 6]`` -> ``"0-2, 5-6"``."""
    out, ordered = [], sorted(set(indices))
    first = prev = ordered[0]
    for i in ordered[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        out.append(f"{first}" if first == prev else f"{first}-{prev}")
        if i is not None:
            first = prev = i
    return ", ".join(out)


def track_settings(precision: str = "float32") -> TrackerSettings:
    """The settings of ``vos track``'s job, decided here once: the official predictor's, with bounded memory.
    ``vos track --everything`` tracks with them, and ``vos app`` too, so that the prompts it exports replay
    to the masks it showed."""
    return TrackerSettings.official(keep_history=False, precision=precision)


def frame_names(video: SeekableSource) -> list[str]:
    """The names mask files take: a folder's file stems, else ``00000``, ``00001``, ..."""
    if isinstance(video, FrameFolder):
        return [p.stem for p in video.files]
    return [f"{i:05d}" for i in range(len(video))]


def check_request(prompts: list[FramePrompt], masks: str) -> None:
    """Everything about a request that needs no video: the mask format, at least one prompt, object ids
    1-255 for palette masks (frame indices and object ids are checked as each :class:`FramePrompt` is
    made). Raises :class:`PromptError` or ``ValueError``."""
    palette = palette_ids(masks)
    if not prompts:
        raise PromptError("nothing to track: give at least one click, box or mask")
    for p in prompts if palette else ():
        check_palette_id(p.obj_id)


def previous_outputs(out_dir: Path) -> list[str]:
    """The outputs of an earlier run in ``out_dir`` (``overlay.mp4``, a non-empty ``masks/``), described."""
    found = []
    if (out_dir / "overlay.mp4").exists():
        found.append("overlay.mp4")
    masks = out_dir / "masks"
    if masks.is_dir() and any(masks.iterdir()):
        found.append(f"masks/ with {sum(1 for _ in masks.rglob('*.png'))} PNG files")
    return found


def check_out_dir(out_dir: Path, overwrite: bool) -> list[str]:
    """The previous outputs in ``out_dir`` that ``overwrite`` allows replacing; ``NotADirectoryError`` for
    a file, ``FileExistsError`` for previous outputs without ``overwrite``."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} is a file, not a folder: the output is a folder (overlay.mp4, masks/)")
    found = previous_outputs(out_dir) if out_dir.is_dir() else []
    if found and not overwrite:
        raise FileExistsError(f"{out_dir} already holds a previous run's outputs ({', '.join(found)}); nothing "
                              "was changed: choose another output folder, or overwrite them (--overwrite)")
    return found


def remove_previous_outputs(out_dir: Path) -> None:
    """Delete an earlier run's ``overlay.mp4`` and ``masks/`` from ``out_dir``."""
    (out_dir / "overlay.mp4").unlink(missing_ok=True)
    if (out_dir / "masks").is_dir():
        shutil.rmtree(out_dir / "masks")


def overlay_part(overlay: Path, first: int) -> Path:
    """The hidden part file of ``overlay`` that holds the frames from ``first`` on, while a run is under way."""
    return overlay.with_name(f".{overlay.stem}-part{first:07d}{overlay.suffix}")


def remove_overlay_parts(overlay: Path) -> None:
    """Delete the part files of ``overlay`` that a killed run left."""
    for part in overlay.parent.glob(f".{overlay.stem}-part*{overlay.suffix}"):  # as overlay_part names them
        part.unlink()


def track_video(
    model: TrackingModel,
    video: str | os.PathLike | SeekableSource,
    prompts: list[FramePrompt],
    out_dir: str | os.PathLike,
    *,
    overlay: bool = True,
    masks: str = "davis",
    settings: TrackerSettings | None = None,
    progress: bool = True,
    overwrite: bool = False,
    on_frame: Callable[[FrameResult], None] | None = None,
    stop: threading.Event | None = None,
) -> TrackOutputs:
    """Track the prompted objects through ``video``; write ``out_dir/overlay.mp4`` and ``out_dir/masks/``
    (``masks``: ``"davis"`` palette PNGs, ``"sav"`` per-object PNGs, or ``"none"``). Prompts are applied by
    :meth:`VideoPredictor.add_prompts`; ``settings`` default to :func:`track_settings`.

    ``on_frame`` sees each frame's result once it is written; setting ``stop`` ends the run after the frame
    being tracked, as Ctrl-C does.

    Everything is checked before anything is written. A folder holding an earlier run's outputs is refused
    (``FileExistsError``) unless ``overwrite``, which removes them once the prompts have been checked, so
    that no old mask is left beside the new ones. A failure part way raises :class:`TrackError` (Ctrl-C:
    :class:`TrackInterrupted`) saying what was kept; every file kept is complete."""
    check_request(prompts, masks)
    out_dir = Path(out_dir)
    replaced = bool(check_out_dir(out_dir, overwrite))
    source = video if isinstance(video, SeekableSource) else open_video(video)
    predictor = VideoPredictor(model, source, settings or track_settings())
    mask_dir = None if masks == "none" else out_dir / "masks"
    outputs = TrackOutputs(out_dir / "overlay.mp4" if overlay else None, mask_dir, 0, replaced=replaced)
    start = min(p.frame for p in prompts)
    bar = tqdm(total=len(source), desc="tracking", unit="frame", disable=not progress)
    run = None
    try:
        predictor.add_prompts(prompts)
        if replaced:
            remove_previous_outputs(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        run = _Run(source, mask_sink(masks, mask_dir, frame_names(source)) if mask_dir is not None else None,
                   outputs, start)
        with run:
            for frame, result in predictor.track(start, direction="both"):
                run.write(frame, result)
                bar.update(1)
                if on_frame is not None:
                    on_frame(result)
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
    except (SourceError, OSError) as exc:
        if run is None:
            raise
        raise TrackError(f"{exc}; kept {run.kept()}", outputs) from exc
    except KeyboardInterrupt:
        if run is None:
            raise
        raise TrackInterrupted(f"interrupted after {outputs.frames} of {len(source)} frames; kept {run.kept()}",
                               outputs) from None
    finally:
        bar.close()
        predictor.close()
    return outputs


_HELD_BYTES = 128 << 20  # frames of the backward pass held until their part of the overlay is written


class _Run(Sink):
    """The sinks of one run, as one sink: each frame is drawn on as it is tracked.

    From frame 0 on, the overlay is written while tracking and a frame's mask once the overlay holds that
    frame (the muxer writes a frame to disk when the next one arrives), so that a run killed at any point
    leaves as many overlay frames as masks, or one more. When tracking starts later, the backward pass
    comes after the forward one: the forward frames go to one part file, the backward frames are held a
    few at a time and written, in video order, to a part each; the parts are then joined into the overlay
    without re-encoding, and masks are written as frames are done."""

    def __init__(self, source: SeekableSource, masks: Sink | None, outputs: TrackOutputs, start: int) -> None:
        super().__init__()
        self.fps, self.masks, self.outputs, self.start = source.fps, masks, outputs, start
        if masks is not None:
            masks.written = outputs.mask_frames
        self.live = start == 0
        self.parts: dict[int, Path] = {}  # first frame -> part file
        self.overlay = self._open_overlay(self.start)
        self.pending: tuple[Frame, FrameResult] | None = None
        self.held: list[tuple[Frame, FrameResult]] = []
        h, w = source.size
        self.hold = max(1, _HELD_BYTES // (h * w * 3))

    def _open_overlay(self, first: int) -> OverlaySink | None:
        if self.outputs.overlay is None:
            return None
        path = self.outputs.overlay
        if not self.live:
            path = self.parts[first] = overlay_part(path, first)
        return OverlaySink(path, self.fps)

    def _write_masks(self, frame: Frame, result: FrameResult) -> None:
        if self.masks is not None:
            self.masks.write(frame, result)

    def write(self, frame: Frame, result: FrameResult) -> None:
        if self.outputs.overlay is None:
            self._write_masks(frame, result)
        elif self.live:
            self.overlay.write(frame, result)
            self._write_pending()
            self.pending = (frame, result)
        elif result.frame_idx >= self.start:
            self.overlay.write(frame, result)
            self._write_masks(frame, result)
        else:
            self._close_overlay()  # the forward part is complete
            self._write_masks(frame, result)
            self.held.append((frame, result))
            if len(self.held) == self.hold or result.frame_idx == 0:
                self._write_held()
        self.outputs.frames += 1
        self.written.append(frame.index)

    def _write_held(self) -> None:
        held, self.held = self.held[::-1], []
        with self._open_overlay(held[0][0].index) as part:
            for frame, result in held:
                part.write(frame, result)

    def _write_pending(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self._write_masks(*pending)

    def close(self) -> None:
        self._close_overlay()
        self._write_pending()
        if not self.live and self.parts:
            parts = [self.parts[k] for k in sorted(self.parts)]
            self.outputs.overlay_frames = join_videos(parts, self.outputs.overlay)
            self._remove_parts()
        if self.masks is not None:
            self.masks.close()

    def _close_overlay(self) -> None:
        overlay, self.overlay = self.overlay, None
        if overlay is not None:
            try:
                overlay.close()
            finally:
                if self.live:
                    self.outputs.overlay_frames = overlay.frames_on_disk

    def _remove_parts(self) -> None:
        for path in self.parts.values():
            path.unlink(missing_ok=True)
        self.parts.clear()

    def abort(self) -> None:
        """Close what is open after a failure; a second failure (the disk still full) is not raised over
        the first, and leaves every file complete all the same. Parts of an overlay not joined yet go:
        without the frames before the first prompt they would not be the video."""
        try:
            self._close_overlay()
            self._write_pending()  # its overlay frame is on disk now that the writer is closed
        except OSError:
            pass
        finally:
            self._remove_parts()
            if self.masks is not None:
                self.masks.abort()
        self.pending = None

    def kept(self) -> str:
        if self.outputs.overlay is not None and not self.live and self.outputs.overlay_frames == 0:
            return self.outputs.describe() + " (the overlay is written once the backward pass is done)"
        return self.outputs.describe()
