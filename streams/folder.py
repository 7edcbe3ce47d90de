"""A folder of image files as a video (DAVIS / SA-V JPEG layout), ordered by frame number."""
from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np

from .source import Frame, SeekableSource, SourceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def _frame_order(path: Path) -> tuple:
    # Numeric stems sort as numbers ("2" before "10"); other names sort naturally.
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem))


def _truncated_jpeg(data: bytes) -> bool:
    """A JPEG cut short: libjpeg decodes it anyway, padding the rest grey with only a warning on stderr.
    Entropy-coded data never holds a marker, so a whole image has its end marker (FFD9) after its last
    start-of-scan marker (FFDA); an embedded thumbnail's end marker comes before the main image's scans."""
    return data[:2] == b"\xff\xd8" and data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


class FrameFolder(SeekableSource):
    """Images in ``root`` read on demand. ``fps`` is what the caller says, since folders carry no rate."""

    def __init__(self, root: str | os.PathLike, fps: float | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SourceError(f"{self.root}: no such folder of frames")
        self.files = sorted(
            (p for p in self.root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_frame_order
        )
        if not self.files:
            raise SourceError(f"{self.root}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.fps = fps
        self.size = self.read(0).image.shape[:2]

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> Frame:
        path = self.files[index]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SourceError(f"{path}: frame {index} cannot be read ({exc.strerror or exc})") from None
        if _truncated_jpeg(data):
            raise SourceError(f"{path}: frame {index} is a truncated JPEG (the file ends before the image does)")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if image is None:
            raise SourceError(f"{path}: frame {index} cannot be read as an image")
        if self.size is not None and image.shape[:2] != tuple(self.size):
            raise SourceError(
                f"{path}: frame {index} is {image.shape[1]}x{image.shape[0]}, "
                f"the first frame is {self.size[1]}x{self.size[0]}"
            )
        media_time = index / self.fps if self.fps else None
        return Frame(index, cv2.cvtColor(image, cv2.COLOR_BGR2RGB), media_time=media_time)
