"""Reference trackers with no learning at all, to measure a learned one against on the same sequences.

* :func:`copy_first_mask`: the first frame's mask on every frame (what a tracker that never moves gets);
* :func:`flow_warp`: the previous mask carried to each next frame by dense optical flow (OpenCV's DIS,
  backward flow and ``cv2.remap``), the classical propagation baseline.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import cv2
import numpy as np


def copy_first_mask(frames: Iterable[np.ndarray], first_mask: np.ndarray) -> Iterator[np.ndarray]:
    """``first_mask (H, W)`` (object ids or bool) once per frame of ``frames``."""
    for _ in frames:
        yield first_mask.copy()


def flow_warp(frames: Iterable[np.ndarray], first_mask: np.ndarray, preset: int = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM) -> Iterator[np.ndarray]:
    """Masks ``(H, W)`` with the ids of ``first_mask`` for each ``(H, W, 3)`` RGB frame: frame 0 gets the
    first mask; each later one the previous mask warped by the flow from it back to the previous frame
    (every object's indicator bilinearly remapped, kept where it is at least 0.5, the larger one winning)."""
    dis = cv2.DISOpticalFlow_create(preset)
    ids = [int(i) for i in np.unique(first_mask) if i != 0]
    prev_gray, mask = None, first_mask.copy()
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if prev_gray is not None:
            flow = dis.calc(gray, prev_gray, None)  # for each pixel now, where it was on the previous frame
            h, w = gray.shape
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
            best = np.full((h, w), 0.5, np.float32)
            warped = np.zeros_like(mask)
            for i in ids:
                soft = cv2.remap((mask == i).astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
                take = soft >= best
                warped[take], best[take] = i, soft[take]
            mask = warped
        prev_gray = gray
        yield mask.copy()
