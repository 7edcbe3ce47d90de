"""Mask sinks: DAVIS palette PNGs (one file per frame, object id as the index) and SA-V per-object PNGs
(one binary file per object per frame). Every file is written atomically: a temporary file, then a rename,
so an interrupted run leaves only complete files."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from .files import atomic_write


def davis_palette() -> list[int]:
    """The 256-colour palette of DAVIS annotations (PASCAL VOC's: id bits spread over R, G and B)."""
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return out


def write_palette_png(path: Path, labels: np.ndarray, palette: list[int] | None = None) -> Path:
    """``(H, W)`` object ids (0-255) as a palette PNG, atomically; the DAVIS palette unless one is given."""
    if labels.ndim != 2:
        raise ValueError(f"{path}: a label map is (H, W), got shape {labels.shape}")
    if labels.dtype != np.uint8 and labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{path}: label values must be 0-255 to fit a palette PNG, got {labels.min()}-{labels.max()}")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(palette if palette is not None else davis_palette())
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def write_binary_png(path: Path, mask: np.ndarray) -> Path:
    """An ``(H, W)`` boolean mask as a grayscale PNG of 0 and 255, atomically."""
    if mask.ndim != 2:
        raise ValueError(f"{path}: a mask is (H, W), got shape {mask.shape}")
    image = Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L")
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


class PaletteMaskWriter:
    """``folder/<name>.png`` per frame: a DAVIS palette PNG with each pixel's object id."""

    def __init__(self, folder: str | os.PathLike, palette: list[int] | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.palette = palette

    def write(self, name: str, labels: np.ndarray) -> Path:
        return write_palette_png(self.folder / f"{name}.png", labels, self.palette)


class PerObjectMaskWriter:
    """``folder/<obj:03d>/<name>.png`` per object and frame: 0 and 255, as SA-V stores masklets."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, masks: Mapping[int, np.ndarray]) -> list[Path]:
        paths = []
        for obj_id, mask in masks.items():
            folder = self.folder / f"{obj_id:03d}"
            folder.mkdir(exist_ok=True)
            paths.append(write_binary_png(folder / f"{name}.png", mask))
        return paths
