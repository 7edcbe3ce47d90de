"""Reading mask PNGs as object-id arrays."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def read_index_png(path: Path) -> np.ndarray:
    """``(H, W)`` uint8 object ids from a palette or grayscale PNG (RGB files are refused)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"mask file not found: {path}")
    with Image.open(path) as image:
        if image.mode not in ("P", "L", "1"):
            raise ValueError(f"{path}: mask PNGs must be palette or grayscale, got mode {image.mode}")
        return np.array(image, dtype=np.uint8)


def read_prediction(path: Path) -> np.ndarray:
    """Like :func:`read_index_png`, but a missing file is reported as a missing prediction."""
    if not Path(path).exists():
        raise FileNotFoundError(f"missing prediction: {path}")
    return read_index_png(path)


def frame_pngs(folder: Path) -> list[Path]:
    """The PNG files of a folder, in name order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"mask folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")
