"""Where tracking results go. Every sink takes ``write(frame, result)`` for each finished frame and
``close()`` once, so that ``vos track``, ``vos live`` and ``vos eval`` write through the same list of sinks,
from frames decoded once. The file formats themselves are in :mod:`streams.overlay` and
:mod:`streams.masks` (every file written atomically, the overlay cut back to whole frames)."""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

from streams import Frame
from streams.masks import PaletteMaskWriter, PerObjectMaskWriter
from streams.overlay import Annotator, OverlayVideoWriter

from ..tracking.results import FrameResult


class Sink(ABC):
    """Takes each finished frame with its result; ``written`` lists the frame indices it has stored.
    ``palette_ids``: the format stores ids as palette indices, so objects need ids 1-255."""

    palette_ids = False

    def __init__(self) -> None:
        self.written: list[int] = []

    @abstractmethod
    def write(self, frame: Frame, result: FrameResult) -> None: ...

    def close(self) -> None:
        """Finish the output; safe to call twice."""


class OverlaySink(Sink):
    """An H.264 video of the frames with every object's mask, box and id drawn on; frames in video order."""

    def __init__(self, path: str | os.PathLike, fps: float, annotator: Annotator | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.writer = OverlayVideoWriter(self.path, fps=fps, annotator=annotator)

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.writer.write(frame.image, result.detections())
        self.written.append(frame.index)

    @property
    def frames_on_disk(self) -> int:
        """Frames the file holds whole (the muxer writes a frame when the next one arrives, or on close)."""
        return self.writer.frames_on_disk

    def close(self) -> None:
        self.writer.close()


class _MaskFileSink(Sink):
    """Mask files named after the frames: ``names[frame.index]``."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names


class PaletteMaskSink(_MaskFileSink):
    """``folder/<name>.png`` per frame: a palette PNG of object ids (the DAVIS palette unless one is given),
    overlapping pixels owned as :func:`vos.tracking.results.owner_map` decides."""

    palette_ids = True

    def __init__(self, folder: str | os.PathLike, names: list[str], palette: list[int] | None = None) -> None:
        super().__init__(names)
        self.writer = PaletteMaskWriter(folder, palette)

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.writer.write(self.names[frame.index], result.label_map())
        self.written.append(frame.index)


class PerObjectMaskSink(_MaskFileSink):
    """``folder/<obj:03d>/<name>.png`` per object and frame, 0 and 255 (SA-V); objects may overlap."""

    def __init__(self, folder: str | os.PathLike, names: list[str]) -> None:
        super().__init__(names)
        self.writer = PerObjectMaskWriter(folder)

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.writer.write(self.names[frame.index], dict(zip(result.obj_ids, result.masks)))
        self.written.append(frame.index)


# The mask formats of ``--masks``: the one place a format's name becomes a sink.
MASK_SINKS: dict[str, type[_MaskFileSink] | None] = {"davis": PaletteMaskSink, "sav": PerObjectMaskSink, "none": None}


def palette_ids(fmt: str) -> bool:
    """Whether mask format ``fmt`` needs object ids 1-255."""
    return MASK_SINKS.get(fmt) is not None and MASK_SINKS[fmt].palette_ids


def mask_sink(fmt: str, folder: Path, names: list[str]) -> Sink | None:
    """The sink of mask format ``fmt`` (``"davis"``, ``"sav"`` or ``"none"``: no sink) writing into ``folder``."""
    if fmt not in MASK_SINKS:
        raise ValueError(f"unknown mask format {fmt!r}; use one of {tuple(MASK_SINKS)}")
    kind = MASK_SINKS[fmt]
    return None if kind is None else kind(folder, names)
