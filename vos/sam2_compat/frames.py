"""A video read as the official SAM 2 video predictor reads it, so that the drop-in adapter sees its pixels.

The official ``init_state`` takes a folder of JPEG files named by frame number, decoded and squashed to the
model's square input by PIL (bicubic), or an MP4 file, which decord decodes straight to the square through
ffmpeg's ``scale`` filter (bilinear). vos's own readers decode with OpenCV and PyAV at full resolution and
resize with torch (:func:`vos.model.transforms.preprocess`): pixels within 2 grey levels of the official ones,
which random weights amplify to logits up to about 0.1 apart: close, but not the same masks. :class:`Sam2Frames` gives both the frames at the video's resolution (``read``) and the
model's input images exactly as the official loader makes them (``model_image``).
"""
from __future__ import annotations

import os
from pathlib import Path

import av
import av.filter
import numpy as np
from PIL import Image

from streams import Frame, SeekableSource, SourceError, VideoFile

from ..model.transforms import pil_resize

JPEG_SUFFIXES = (".jpg", ".jpeg", ".JPG", ".JPEG")  # the official loader's list, case variants included
MP4_SUFFIXES = (".mp4", ".MP4")


def is_sam2_video(path: str | os.PathLike) -> bool:
    """Whether the official predictor reads ``path`` itself: a folder (of JPEGs) or an MP4 file."""
    path = Path(path)
    return path.is_dir() or path.suffix in MP4_SUFFIXES


class Sam2Frames(SeekableSource):
    """The frames of a JPEG folder or an MP4 file, with the official loader's model inputs.

    ``image_size`` is the model's square input. Folder frames are the files with a JPEG suffix, ordered by
    the integer their name holds (``00012.jpg`` is frame 12), as the official loader requires; MP4 frames
    are decoded once at the input size, as the official loader does (``image_size**2 * 3`` bytes a frame).
    """

    def __init__(self, path: str | os.PathLike, image_size: int) -> None:
        self.path = Path(path)
        self.image_size = image_size
        self.fps = None
        if self.path.is_dir():
            self.files = _numbered_jpegs(self.path)
            with Image.open(self.files[0]) as first:
                self.size = (first.height, first.width)
            self._scaled: list[np.ndarray] | None = None
            self._full: VideoFile | None = None
        elif self.path.suffix in MP4_SUFFIXES:
            self._full = VideoFile(self.path)
            self.size, self.fps = tuple(self._full.size), self._full.fps
            self._scaled = _scaled_mp4_frames(self.path, image_size)
        else:
            raise SourceError(f"{self.path}: the official predictor reads a folder of JPEGs or an MP4 file")

    def __len__(self) -> int:
        return len(self.files) if self._scaled is None else len(self._scaled)

    def read(self, index: int) -> Frame:
        """Frame ``index`` at the video's resolution (PIL's decoding of a JPEG; PyAV's of an MP4 frame)."""
        if self._full is not None:
            return self._full.read(index)
        return Frame(index, self._decode(index))

    def squashed(self, index: int, size: int) -> np.ndarray | None:
        """The official loader's pixels for frame ``index`` at the model's input size (``None`` at another)."""
        return self.model_image(index) if size == self.image_size else None

    def model_image(self, index: int) -> np.ndarray:
        """``(image_size, image_size, 3)`` RGB ``uint8``: the official loader's pixels for frame ``index``."""
        if self._scaled is not None:
            return self._scaled[index]
        return pil_resize(self._decode(index), self.image_size)

    def _decode(self, index: int) -> np.ndarray:
        path = self.files[index]
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except OSError as exc:
            raise SourceError(f"{path}: frame {index} cannot be read as an image ({exc})") from None
        if rgb.shape[:2] != self.size:
            raise SourceError(f"{path}: frame {index} is {rgb.shape[1]}x{rgb.shape[0]}, "
                              f"the first frame is {self.size[1]}x{self.size[0]}")
        return rgb

    def close(self) -> None:
        if self._full is not None:
            self._full.close()


def _numbered_jpegs(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.suffix in JPEG_SUFFIXES]
    if not files:
        raise SourceError(f"{folder}: no JPEG frames ({', '.join(JPEG_SUFFIXES)})")
    unnumbered = [p.name for p in files if not p.stem.isdigit()]
    if unnumbered:
        raise SourceError(f"{folder}: the official predictor reads frames named by their number (00000.jpg); "
                          f"{unnumbered[0]} is not")
    return sorted(files, key=lambda p: int(p.stem))


def _scaled_mp4_frames(path: Path, size: int) -> list[np.ndarray]:
    """Every frame of an MP4 scaled to ``size x size`` RGB by ffmpeg's ``scale`` filter with bilinear
    interpolation, converting from the stream's pixel format in the same step, as decord does."""
    frames = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            graph = av.filter.Graph()
            chain = [graph.add_buffer(template=stream), graph.add("scale", f"{size}:{size}:flags=bilinear"),
                     graph.add("format", "rgb24"), graph.add("buffersink")]
            for a, b in zip(chain, chain[1:]):
                a.link_to(b)
            graph.configure()
            for decoded in container.decode(stream):
                graph.push(decoded)
                frames.append(graph.pull().to_ndarray())
    except av.FFmpegError as exc:
        raise SourceError(f"{path}: cannot be decoded ({exc})") from None
    if not frames:
        raise SourceError(f"{path}: contains no video frames")
    return frames
