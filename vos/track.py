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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from streams import FrameFolder, SeekableSource, SourceError, open_video
from streams.masks import PaletteMaskWriter, PerObjectMaskWriter
from streams.overlay import OverlayVideoWriter

from .inference_core import TrackerSettings
from .model import SAM2Model
from .prompts import FramePrompt, PromptError, check_obj_id, check_palette_id, merge_prompts
from .results import FrameResult, detections_from_masks
from .video_predictor import VideoPredictor

MASK_FORMATS = ("davis", "sav", "none")


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
            parts.append(f"masks of frames {_ranges(self.mask_frames)} in {self.masks}" if self.mask_frames
                         else f"no masks in {self.masks}")
        if self.overlay is not None:
            if not self.overlay.exists():
                parts.append(f"no {self.overlay.name}")
            elif self.overlay_frames:
                parts.append(f"{self.overlay} with frames 0-{self.overlay_frames - 1}")
            else:
                parts.append(f"{self.overlay} with no frames")
        return ", ".join(parts) or "nothing"


class TrackError(RuntimeError):
    """Tracking stopped part way (a frame that cannot be read, a full disk). The message names the cause and
    what was kept; ``kept`` holds the same as :class:`TrackOutputs`. Every file kept is complete."""

    def __init__(self, message: str, kept: TrackOutputs) -> None:
        super().__init__(message)
        self.kept = kept


class TrackInterrupted(KeyboardInterrupt):
    """Ctrl-C during tracking: the outputs were closed cleanly; ``kept`` says what they hold."""

    def __init__(self, message: str, kept: TrackOutputs) -> None:
        super().__init__(message)
        self.kept = kept


def _ranges(indices: list[int]) -> str:
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


def _frame_names(video: SeekableSource) -> list[str]:
    if isinstance(video, FrameFolder):
        return [p.stem for p in video.files]
    return [f"{i:05d}" for i in range(len(video))]


class _MaskSink:
    def __init__(self, folder: Path | None, fmt: str, names: list[str]) -> None:
        self.names = names
        self.writer = None
        if folder is not None and fmt == "davis":
            self.writer = PaletteMaskWriter(folder)
        elif folder is not None and fmt == "sav":
            self.writer = PerObjectMaskWriter(folder)
        self.fmt = fmt
        self.written: list[int] = []

    def write(self, result: FrameResult) -> None:
        name = self.names[result.frame_idx]
        if self.fmt == "davis":
            self.writer.write(name, result.label_map())
        elif self.fmt == "sav":
            self.writer.write(name, dict(zip(result.obj_ids, result.masks)))
        if self.writer is not None:
            self.written.append(result.frame_idx)


def check_request(prompts: list[FramePrompt], masks: str) -> None:
    """Everything about a request that needs no video: the mask format, at least one prompt, integer frames,
    object ids (1-255 for palette masks). Raises :class:`PromptError` or ``ValueError``."""
    if masks not in MASK_FORMATS:
        raise ValueError(f"unknown mask format {masks!r}; use one of {MASK_FORMATS}")
    if not prompts:
        raise PromptError("nothing to track: give at least one click, box or mask")
    for p in prompts:
        obj_id = check_obj_id(p.obj_id, f"frame {p.frame}")
        if masks == "davis":
            check_palette_id(obj_id)
        if isinstance(p.frame, bool) or not isinstance(p.frame, (int, np.integer)):
            raise PromptError(f"object {obj_id}: frame index {p.frame!r} is not an integer")


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


def track_video(
    model: SAM2Model,
    video: str | os.PathLike | SeekableSource,
    prompts: list[FramePrompt],
    out_dir: str | os.PathLike,
    *,
    overlay: bool = True,
    masks: str = "davis",
    settings: TrackerSettings | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> TrackOutputs:
    """Track the prompted objects through ``video``; write ``out_dir/overlay.mp4`` and ``out_dir/masks/``
    (``masks``: ``"davis"`` palette PNGs, ``"sav"`` per-object PNGs, or ``"none"``).

    Everything is checked before anything is written. A folder holding an earlier run's outputs is refused
    (``FileExistsError``) unless ``overwrite``, which removes them once the prompts have been checked, so
    that no old mask is left beside the new ones. A failure part way raises :class:`TrackError` (Ctrl-C:
    :class:`TrackInterrupted`) saying what was kept; every file kept is complete."""
    check_request(prompts, masks)
    out_dir = Path(out_dir)
    replaced = bool(check_out_dir(out_dir, overwrite))
    source = video if isinstance(video, SeekableSource) else open_video(video)
    predictor = VideoPredictor(model, source, settings or TrackerSettings.official(keep_history=False))
    mask_dir = None if masks == "none" else out_dir / "masks"
    outputs = TrackOutputs(out_dir / "overlay.mp4" if overlay else None, mask_dir, 0, replaced=replaced)
    start = min(p.frame for p in prompts)
    bar = tqdm(total=len(source), desc="tracking", unit="frame", disable=not progress)
    run = None
    try:
        for p in merge_prompts(prompts):
            if p.prompt.mask is not None:
                predictor.add_mask(p.frame, p.obj_id, p.prompt.mask)
            else:
                predictor.add_points(p.frame, p.obj_id, p.prompt.points, p.prompt.labels, p.prompt.box)
        if replaced:
            remove_previous_outputs(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        run = _Run(source, _MaskSink(mask_dir, masks, _frame_names(source)), outputs, live_overlay=start == 0)
        for result in predictor.propagate_both(start):
            run.add(result)
            bar.update(1)
        run.finish()
    except (SourceError, OSError) as exc:
        if run is None:
            raise
        run.abort()
        raise TrackError(f"{exc}; kept {run.kept()}", outputs) from exc
    except KeyboardInterrupt:
        if run is None:
            raise
        run.abort()
        raise TrackInterrupted(f"interrupted after {outputs.frames} of {len(source)} frames; kept {run.kept()}",
                               outputs) from None
    finally:
        bar.close()
        if run is not None:
            run.abort()
        predictor.close()
    return outputs


class _Run:
    """The files of one run. With the overlay written while tracking, a frame's mask is written once the
    overlay holds that frame (the muxer writes a frame to disk when the next one arrives), so that a run
    killed at any point leaves as many overlay frames as masks, or one more. Otherwise the masks are
    written as frames are done and the overlay follows the backward pass (masks held bit-packed)."""

    def __init__(self, source: SeekableSource, sink: _MaskSink, outputs: TrackOutputs, live_overlay: bool) -> None:
        self.source, self.sink, self.outputs, self.live = source, sink, outputs, live_overlay
        sink.written = outputs.mask_frames
        self.writer = self._open_writer() if live_overlay else None
        self.pending: FrameResult | None = None
        self.held: dict[int, tuple[list[int], np.ndarray, int]] = {}

    def _open_writer(self) -> OverlayVideoWriter | None:
        if self.outputs.overlay is None:
            return None
        return OverlayVideoWriter(self.outputs.overlay, self.source.fps or 25.0)

    def add(self, result: FrameResult) -> None:
        if self.outputs.overlay is None:
            self.sink.write(result)
        elif self.live:
            self.writer.write(self.source.read(result.frame_idx).image, result.detections())
            self._write_pending()
            self.pending = result
        else:
            self.sink.write(result)
            m = result.masks
            self.held[result.frame_idx] = (result.obj_ids, np.packbits(m, axis=-1), m.shape[-1])
        self.outputs.frames += 1

    def _write_pending(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.sink.write(pending)

    def finish(self) -> None:
        if not self.live:
            self.writer = self._open_writer()
        if self.writer is not None and not self.live:
            for index in range(len(self.source)):
                obj_ids, packed, width = self.held.pop(index)
                unpacked = np.unpackbits(packed, axis=-1, count=width).astype(bool)
                self.writer.write(self.source.read(index).image, detections_from_masks(obj_ids, unpacked))
        self._close_writer()
        self._write_pending()

    def _close_writer(self) -> None:
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            finally:
                self.outputs.overlay_frames = writer.frames_on_disk

    def abort(self) -> None:
        """Close what is open after a failure; a second failure (the disk still full) is not raised over
        the first, and leaves every file complete all the same."""
        try:
            self._close_writer()
            self._write_pending()  # its overlay frame is on disk now that the writer is closed
        except OSError:
            pass
        self.pending = None

    def kept(self) -> str:
        if self.outputs.overlay is not None and not self.live and self.outputs.overlay_frames == 0:
            return self.outputs.describe() + " (the overlay is written once the backward pass is done)"
        return self.outputs.describe()
