"""Offline tracking of a whole video into files: an overlay video and mask PNGs.

Propagation runs forward from the earliest prompted frame to the end, then backward to the first frame,
as SAM 2's ``propagate_in_video`` does in both directions. Masks are written as each frame is done. When
the prompts start on frame 0 (the usual case) the overlay is written while tracking, so an interrupted run
leaves frames 0..N-1 of masks and a playable video; otherwise the overlay follows once the backward pass
is done (the masks of the video are then held, bit-packed, in memory).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from streams import FrameFolder, SeekableSource, open_video
from streams.masks import PaletteMaskWriter, PerObjectMaskWriter
from streams.overlay import OverlayVideoWriter

from .inference_core import TrackerSettings
from .model import SAM2Model
from .prompts import FramePrompt, PromptError, merge_prompts
from .results import FrameResult, detections_from_masks
from .video_predictor import VideoPredictor

MASK_FORMATS = ("davis", "sav", "none")


@dataclass
class TrackOutputs:
    """What a run wrote: the overlay video (or ``None``), the mask folder (or ``None``), frames done."""

    overlay: Path | None
    masks: Path | None
    frames: int


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

    def write(self, result: FrameResult) -> None:
        name = self.names[result.frame_idx]
        if self.fmt == "davis":
            self.writer.write(name, result.label_map())
        elif self.fmt == "sav":
            self.writer.write(name, dict(zip(result.obj_ids, result.masks)))


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
) -> TrackOutputs:
    """Track the prompted objects through ``video``; write ``out_dir/overlay.mp4`` and ``out_dir/masks/``
    (``masks``: ``"davis"`` palette PNGs, ``"sav"`` per-object PNGs, or ``"none"``)."""
    if masks not in MASK_FORMATS:
        raise ValueError(f"unknown mask format {masks!r}; use one of {MASK_FORMATS}")
    if not prompts:
        raise PromptError("nothing to track: give at least one click, box or mask")
    source = video if isinstance(video, SeekableSource) else open_video(video)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = settings or TrackerSettings.official(keep_history=False)
    predictor = VideoPredictor(model, source, settings)
    for p in merge_prompts(prompts):
        p.prompt.check(predictor.video_size, f"object {p.obj_id}, frame {p.frame}")
        if p.prompt.mask is not None:
            predictor.add_mask(p.frame, p.obj_id, p.prompt.mask)
        else:
            predictor.add_points(p.frame, p.obj_id, p.prompt.points, p.prompt.labels, p.prompt.box)
    start = min(p.frame for p in prompts)
    mask_dir = None if masks == "none" else out_dir / "masks"
    sink = _MaskSink(mask_dir, masks, _frame_names(source))
    video_path = out_dir / "overlay.mp4" if overlay else None
    writer = OverlayVideoWriter(video_path, source.fps or 25.0) if overlay else None
    held: dict[int, tuple[list[int], np.ndarray, tuple[int, int]]] = {}
    done = 0
    bar = tqdm(total=len(source), desc="tracking", unit="frame", disable=not progress)
    try:
        for result in predictor.propagate_both(start):
            sink.write(result)
            if writer is not None:
                if start == 0:
                    writer.write(source.read(result.frame_idx).image, result.detections())
                else:
                    m = result.masks
                    held[result.frame_idx] = (result.obj_ids, np.packbits(m, axis=-1), m.shape[-1])
            done += 1
            bar.update(1)
        if writer is not None and start > 0:
            for index in range(len(source)):
                obj_ids, packed, width = held.pop(index)
                unpacked = np.unpackbits(packed, axis=-1, count=width).astype(bool)
                writer.write(source.read(index).image, detections_from_masks(obj_ids, unpacked))
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        predictor.close()
    return TrackOutputs(video_path, mask_dir, done)

