"""``vos track --everything``: every object of a video found by the automatic mask generator and tracked
into files, as :func:`vos.jobs.track.track_video` writes them."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from streams import SeekableSource, open_video

from ..model.sam2 import SAM2Model
from ..tracking.core import TrackerSettings
from ..tracking.everything import EverythingSettings, EverythingTracker
from ..tracking.prompts import MAX_PALETTE_ID
from .segment import cli_option
from .sinks import OverlaySink, Sinks, mask_sink, palette_ids
from .track import check_out_dir, frame_names, remove_previous_outputs, track_settings


def track_everything(
    model: SAM2Model,
    video: str | os.PathLike | SeekableSource,
    out_dir: str | os.PathLike,
    *,
    settings: EverythingSettings | None = None,
    overlay: bool = True,
    masks: str = "davis",
    tracker_settings: TrackerSettings | None = None,
    progress: bool = True,
    overwrite: bool = False,
    log: Callable[[str], Any] | None = None,
) -> tuple[int, int]:
    """Track every object of ``video`` forward from frame 0 into ``out_dir/overlay.mp4`` and
    ``out_dir/masks/`` (``masks``: ``"davis"`` palette PNGs, ids up to 255, ``"sav"`` one PNG per object
    and frame, or ``"none"``). Objects found on a later frame are tracked from that frame on.
    A folder holding an earlier run's outputs is refused unless ``overwrite``, which replaces them, as
    :func:`vos.jobs.track.track_video` does. ``tracker_settings`` default to :func:`vos.jobs.track.track_settings`.
    When no object is found, ``log`` gets a line saying which filters removed the candidates.
    Returns ``(frames, objects found)``."""
    settings = settings or EverythingSettings()
    if palette_ids(masks):
        limit = MAX_PALETTE_ID if settings.max_id is None else min(settings.max_id, MAX_PALETTE_ID)
        settings = EverythingSettings(**{**settings.__dict__, "max_id": limit})
    out_dir = Path(out_dir)
    replaced = check_out_dir(out_dir, overwrite)
    source = video if isinstance(video, SeekableSource) else open_video(video)
    try:
        if replaced:
            remove_previous_outputs(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        tracker = EverythingTracker(model, settings, tracker_settings or track_settings())
        with Sinks(mask_sink(masks, out_dir / "masks", frame_names(source)),
                   OverlaySink(out_dir / "overlay.mp4", source.fps) if overlay else None) as sinks:
            for frame, result in tqdm(tracker.track(source), total=len(source), desc="tracking everything",
                                      unit="frame", disable=not progress):
                sinks.write(frame, result)
    finally:
        if source is not video:
            source.close()
    found = tracker.next_id - 1
    if not found and log:
        name = video.name if isinstance(video, SeekableSource) else Path(video).name
        log(f"{name}: 0 objects found in {tracker.search_summary(cli_option)}")
    return len(sinks.written), found
