"""Where tracking results go. Every sink takes ``write(frame, result)`` for each finished frame and is closed
once, as a context manager, so that ``vos track``, ``vos live`` and ``vos eval`` write through the same
:class:`Sinks`, from the frames the trackers yield with their results (each decoded once). The file
formats themselves are in :mod:`streams.overlay` and :mod:`streams.masks` (every file written atomically,
the overlay cut back to whole frames)."""
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
    ``palette_ids``: the format stores ids as palette indices, so objects need ids 1-255.

    A context manager: the block's end closes the sink, a failure in it aborts the sink instead (what is
    complete is kept, and a second failure closing it is not raised over the first)."""

    palette_ids = False

    def __init__(self) -> None:
        self.written: list[int] = []

    @abstractmethod
    def write(self, frame: Frame, result: FrameResult) -> None: ...

    def close(self) -> None:
        """Finish the output; safe to call twice."""

    def abort(self) -> None:
        """Close after a failure: keep what is complete; raise nothing."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the failure that stopped the run is the one to report
            pass

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self.close()
        except BaseException:
            self.abort()
            raise


class Sinks(Sink):
    """Several sinks (``None`` entries left out) written in order and closed together: a run's outputs."""

    def __init__(self, *sinks: Sink | None) -> None:
        super().__init__()
        self.sinks = [s for s in sinks if s is not None]

    def write(self, frame: Frame, result: FrameResult) -> None:
        for sink in self.sinks:
            sink.write(frame, result)
        self.written.append(frame.index)

    def close(self) -> None:
        """Close every sink, even after one fails; then raise the first failure."""
        failure = None
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as exc:  # noqa: BLE001 - raised below, once the others are closed
                failure = failure or exc
        if failure is not None:
            raise failure

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


class OverlaySink(Sink):
    """An H.264 video of the frames with every object's mask, box and id drawn on; frames in video order.
    ``fps``: the source's rate (``None``: unknown, see :class:`streams.overlay.OverlayVideoWriter`)."""

    def __init__(self, path: str | os.PathLike, fps: float | None, annotator: Annotator | None = None) -> None:
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


def _sink_class(fmt: str) -> type[_MaskFileSink] | None:
    """The sink class of mask format ``fmt`` (``None`` for ``"none"``); ``ValueError`` for an unknown format."""
    if fmt not in MASK_SINKS:
        raise ValueError(f"unknown mask format {fmt!r}; use one of {tuple(MASK_SINKS)}")
    return MASK_SINKS[fmt]


def palette_ids(fmt: str) -> bool:
    """Whether mask format ``fmt`` needs object ids 1-255; ``ValueError`` for an unknown format."""
    kind = _sink_class(fmt)
    return kind is not None and kind.palette_ids


def mask_sink(fmt: str, folder: Path, names: list[str]) -> Sink | None:
    """The sink of mask format ``fmt`` (``"davis"``, ``"sav"`` or ``"none"``: no sink) writing into ``folder``."""
    kind = _sink_class(fmt)
    return None if kind is None else kind(folder, names)
