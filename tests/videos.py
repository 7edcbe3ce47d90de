"""Small test videos: synthetic moving shapes and a downscaled real DAVIS clip, as JPEG folders."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def moving_shapes(num_frames: int, size: tuple[int, int] = (96, 160), seed: int = 0) -> list[np.ndarray]:
    """RGB frames of a textured background with a disc and a square moving across it."""
    h, w = size
    rng = np.random.default_rng(seed)
    background = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    frames = []
    for t in range(num_frames):
        img = background.copy()
        cv2.circle(img, (int(w * 0.2 + 3 * t), int(h * 0.4 + 1.5 * t)), h // 6, (230, 40, 40), -1)
        x0, y0 = int(w * 0.7 - 2 * t), int(h * 0.6)
        cv2.rectangle(img, (x0, y0), (x0 + h // 5, y0 + h // 5), (40, 200, 60), -1)
        frames.append(img)
    return frames


def write_jpegs(frames: list[np.ndarray], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def davis_clip(shared_dir: Path, num_frames: int, size: tuple[int, int] = (135, 240)) -> list[np.ndarray]:
    """The first frames of the first DAVIS 2016 dev sequence, downscaled to ``size = (H, W)``."""
    root = shared_dir / "data" / "davis2016-dev" / "JPEGImages" / "480p"
    sequence = sorted(p for p in root.iterdir() if p.is_dir())[0]
    files = sorted(sequence.glob("*.jpg"))[:num_frames]
    out = []
    for f in files:
        img = cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB)
        out.append(cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA))
    return out
