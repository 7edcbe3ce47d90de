"""The overlay video sink: frames with each object's mask, box and id drawn in its own colour (supervision's
annotators), encoded with PyAV (H.264 where the build has it).

MP4 files are written fragmented (a fragment per keyframe, a keyframe every second), so a run killed at
frame N leaves a playable file up to the last fragment; a run stopped by an exception or Ctrl-C closes the
file properly.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import supervision as sv

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


class OverlayVideoWriter:
    """Writes annotated frames to a video file: ``write(image (H, W, 3) RGB uint8, detections)``.

    All frames must have one size; odd sizes are padded by a pixel, as 4:2:0 video needs even ones.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0, annotator: Annotator | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(25)
        self.annotator = annotator or Annotator()
        # Packets go to disk as they are muxed, so what a killed process leaves is what it encoded.
        options = {"flush_packets": "1"}
        if self.path.suffix.lower() in (".mp4", ".mov"):
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        self._container = av.open(str(self.path), "w", options=options)
        self._stream = None
        self._size: tuple[int, int] | None = None
        self.frames_written = 0

    def write(self, image: np.ndarray, detections: sv.Detections | None = None) -> None:
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
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def _open_stream(self, size: tuple[int, int]) -> None:
        self._size = size
        h, w = size
        stream = self._container.add_stream(_codec(), rate=self.fps)
        stream.width, stream.height = w + w % 2, h + h % 2
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.fps
        stream.codec_context.gop_size = max(1, round(float(self.fps)))  # a keyframe (and fragment) a second
        if stream.codec_context.name in ("libx264", "h264"):
            # No frame reordering or lookahead: each frame is written when it is drawn.
            stream.codec_context.options = {"crf": "20", "preset": "veryfast", "tune": "zerolatency"}
        self._stream = stream

    def close(self) -> None:
        if self._container is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> "OverlayVideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
