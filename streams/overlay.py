"""The overlay video sink: frames with each object's mask, box and id drawn in its own colour (supervision's
annotators), encoded with PyAV (H.264 where the build has it).

MP4 files are written fragmented, a fragment per frame, so a run killed at frame N leaves a playable file
of frames 0..N-2; a run stopped by an exception or Ctrl-C closes the file properly, and a full disk leaves
the file cut back to its last complete fragment.
"""
from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import supervision as sv

from .files import WriteError, atomic_write, write_error
from .masks import davis_palette

_CODECS = ("libx264", "h264", "libopenh264", "mpeg4")


def _codec() -> str:
    for name in _CODECS:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # PyAV raises different types for unknown and decode-only codecs
            continue
    raise RuntimeError(f"none of the video encoders {_CODECS} is available in this PyAV build")


def _whole_boxes_end(path: Path, start: int) -> tuple[int, int]:
    """Where the last complete fragment (moof + mdat) or index (mfra) after byte ``start`` of an MP4 ends,
    and how many fragments end there: the top-level boxes are walked by their size headers."""
    size = path.stat().st_size
    end, fragments, offset = start, 0, start
    with open(path, "rb") as f:
        while offset + 8 <= size:
            f.seek(offset)
            header = f.read(16)
            length, kind = struct.unpack(">I4s", header[:8])
            if length == 1 and len(header) == 16:
                length = struct.unpack(">Q", header[8:])[0]
            if length < 8 or offset + length > size:
                break
            offset += length
            if kind == b"mdat":
                end, fragments = offset, fragments + 1
            elif kind == b"mfra":
                end = offset
    return end, fragments


class Annotator:
    """Draws masks, boxes and ``#id`` labels on RGB ``uint8`` frames, each object in the colour its id has
    in the DAVIS palette, as in the mask PNGs."""

    def __init__(self, opacity: float = 0.5) -> None:
        lookup = sv.ColorLookup.TRACK
        rgb = davis_palette()
        palette = sv.ColorPalette([sv.Color(*rgb[3 * i : 3 * i + 3]) for i in range(256)])
        self.masks = sv.MaskAnnotator(color=palette, opacity=opacity, color_lookup=lookup)
        self.boxes = sv.BoxAnnotator(color=palette, thickness=2, color_lookup=lookup)
        self.labels = sv.LabelAnnotator(color=palette, color_lookup=lookup, text_scale=0.5, text_padding=4,
                                        text_position=sv.Position.CENTER_OF_MASS)

    def __call__(self, image: np.ndarray, detections: sv.Detections) -> np.ndarray:
        if len(detections) == 0:
            return image.copy()
        scene = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # supervision draws BGR colours on arrays
        scene = self.masks.annotate(scene, detections)
        scene = self.boxes.annotate(scene, detections)
        scene = self.labels.annotate(scene, detections, labels=[f"#{i}" for i in detections.tracker_id])
        return cv2.cvtColor(scene, cv2.COLOR_BGR2RGB)


DEFAULT_FPS = 25  # the rate of an overlay video whose source does not say its own


class OverlayVideoWriter:
    """Writes annotated frames to a video file: ``write(image (H, W, 3) RGB uint8, detections)``.

    All frames must have one size; odd sizes are padded by a pixel, as 4:2:0 video needs even ones. ``fps``
    is the source's rate; a source that does not know it (``None``) is written at :data:`DEFAULT_FPS`.
    Use as a context manager, or call :meth:`close`. If the file cannot be written (a full disk), the
    writer cuts it back to its last complete fragment, so that it stays playable, and raises
    :class:`streams.files.WriteError` saying how many frames it keeps (:attr:`frames_on_disk`).
    """

    def __init__(self, path: str | os.PathLike, fps: float | None = None, annotator: Annotator | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(DEFAULT_FPS)
        self.annotator = annotator or Annotator()
        # Packets go to disk as they are muxed, and an MP4 gets one fragment per frame: the muxer writes a
        # frame's fragment when the next frame arrives, so a killed process leaves all but its last frame.
        options = {"flush_packets": "1"}
        self._fragmented = self.path.suffix.lower() in (".mp4", ".mov")
        if self._fragmented:
            options["movflags"] = "frag_every_frame+empty_moov+default_base_moof"
        try:
            self._container = av.open(str(self.path), "w", options=options)
        except OSError as exc:
            raise write_error(self.path, exc) from None
        self._stream = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0
        self._packets = 0
        self._good_size: int | None = None  # file size after the last successful mux: a fragment boundary

    @property
    def frames_on_disk(self) -> int:
        """Frames that a reader of the file finds now (all of them once closed)."""
        if self._container is None or not self._fragmented:
            return self._packets
        return max(self._packets - 1, 0)

    def write(self, image: np.ndarray, detections: sv.Detections | None = None) -> None:
        if self._container is None:
            raise ValueError(f"{self.path}: the writer is closed")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"{self.path}: frame {self.frames_written} is not an (H, W, 3) uint8 image")
        if self._stream is None:
            self._open_stream(image.shape[:2])
        elif image.shape[:2] != self._size:
            raise ValueError(f"{self.path}: frame {self.frames_written} is {image.shape[1]}x{image.shape[0]}, "
                             f"earlier frames were {self._size[1]}x{self._size[0]}")
        drawn = self.annotator(image, detections) if detections is not None else image
        h, w = self._size
        if (h % 2) or (w % 2):
            drawn = cv2.copyMakeBorder(drawn, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(drawn), format="rgb24")
        frame.pts = self.frames_written
        self._mux(self._stream.encode(frame))
        self.frames_written += 1

    def _mux(self, packets) -> None:
        try:
            for packet in packets:
                self._container.mux(packet)
                self._packets += 1
                self._good_size = self.path.stat().st_size
        except OSError as exc:
            self._abandon()
            raise write_error(self.path, exc, f"cannot be written at frame {self.frames_written}", self._kept()) from None

    def _kept(self) -> str:
        if not self.path.exists():
            return "the file was removed (not even its header could be written)"
        n = self.frames_on_disk
        return f"the file keeps frames 0-{n - 1}" if n else "the file holds no frames"

    def _abandon(self) -> None:
        """After a failed write: close the container and cut the file back to its last whole fragment (or
        remove it if not even the header is whole)."""
        container, self._container = self._container, None
        try:
            container.close()
        except Exception:  # noqa: BLE001 - the file is repaired below whatever the container says
            pass
        if self._good_size is None:
            self.path.unlink(missing_ok=True)
            self._packets = 0
        elif self._fragmented:
            os.truncate(self.path, self._good_size)
            self._packets = max(self._packets - 1, 0)

    def _open_stream(self, size: tuple[int, int]) -> None:
        self._size = size
        h, w = size
        stream = self._container.add_stream(_codec(), rate=self.fps)
        stream.width, stream.height = w + w % 2, h + h % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.fps
        stream.codec_context.gop_size = max(1, round(float(self.fps)))  # a keyframe a second, for seeking
        if stream.codec_context.name in ("libx264", "h264"):
            # No frame reordering or lookahead: each frame is written when it is drawn.
            stream.codec_context.options = {"crf": "20", "preset": "veryfast", "tune": "zerolatency"}
        self._stream = stream

    def close(self) -> None:
        """Finish the file. A writer closed before its first frame removes its file: an MP4 without a
        frame would be an empty video."""
        if self._container is None:
            return
        if self._stream is None:
            self._container.close()
            self._container = None
            self.path.unlink(missing_ok=True)
            return
        self._mux(self._stream.encode(None))
        try:
            self._container.close()
        except OSError as exc:
            self._abandon()
            raise write_error(self.path, exc, "cannot be finished", self._kept()) from None
        self._container = None
        if self._fragmented:
            self._check_tail()

    def _check_tail(self) -> None:
        """FFmpeg does not report a failure to write the trailer (the last fragment and the index), so
        look: cut anything incomplete after the last whole fragment, and say so."""
        size = self.path.stat().st_size
        end, fragments = _whole_boxes_end(self.path, self._good_size)
        if end == size and fragments == 1:
            return
        os.truncate(self.path, end)
        self._packets = self._packets - 1 + fragments
        free = os.statvfs(self.path.parent).f_bavail
        reason = "No space left on device" if free == 0 else "its last frame could not be written"
        raise WriteError(f"{self.path}: cannot be finished ({reason}); {self._kept()}")

    def __enter__(self) -> "OverlayVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def join_videos(parts: list[Path], path: str | os.PathLike) -> int:
    """The videos ``parts``, in order, as one file at ``path`` (written atomically); returns its frame
    count. Parts written by :class:`OverlayVideoWriter` at one size and rate share their encoder
    parameters, so their packets are copied as they are (no decoding, no loss); parts that do not are
    decoded and encoded again."""
    def streams(container):
        return container.streams.video[0]

    def same_parameters() -> bool:
        found = set()
        for part in parts:
            with av.open(str(part)) as c:
                ctx = streams(c).codec_context
                found.add((ctx.name, ctx.width, ctx.height, bytes(ctx.extradata or b""), streams(c).time_base))
        return len(found) == 1

    def copy(tmp: Path) -> None:
        options = {"movflags": "frag_every_frame+empty_moov+default_base_moof"} if tmp.suffix.lower() in (".mp4", ".mov") else {}
        with av.open(str(parts[0])) as first, av.open(str(tmp), "w", options=options) as out:
            stream = out.add_stream_from_template(streams(first))
            offset = 0
            for part in parts:
                with av.open(str(part)) as c:
                    end = offset
                    for packet in c.demux(streams(c)):
                        if packet.dts is None:  # the demuxer's end-of-stream marker
                            continue
                        end = max(end, offset + packet.pts + (packet.duration or 0))
                        packet.pts += offset
                        packet.dts += offset
                        packet.stream = stream
                        out.mux(packet)
                    offset = end

    def reencode(tmp: Path) -> None:
        with av.open(str(parts[0])) as first:
            fps = streams(first).average_rate
        writer = OverlayVideoWriter(tmp, fps=None if fps is None else float(fps))
        try:
            for part in parts:
                with av.open(str(part)) as c:
                    for frame in c.decode(video=0):
                        writer.write(frame.to_ndarray(format="rgb24"))
        finally:
            writer.close()

    if not parts:
        raise ValueError("no videos to join")
    path = Path(path)
    atomic_write(path, copy if same_parameters() else reencode, suffix=f".tmp{path.suffix}")  # PyAV picks the format by it
    with av.open(str(path)) as c:
        return sum(1 for packet in c.demux(streams(c)) if packet.dts is not None)
