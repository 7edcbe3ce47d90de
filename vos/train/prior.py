"""Simulated previous-frame masks, as MaskTrack (Perazzi et al., CVPR 2017) trains from still images: the true
mask of a frame, deformed the way a tracker's last output differs from the object now (it moved and turned
a little, it bends, the tracker lost a part or took a neighbour's pixels, its edge is coarse).

A model that tracks with the previous mask as an input (``ModelConfig.track_with_previous_mask``) learns to
refine it from any frame with an annotated mask, no video needed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PriorSimulation:
    """How the previous mask of a tracked training frame is made: the model's own prediction on the frame
    before (as at inference) with ``own_prob``, no previous mask at all with ``none_prob`` (a tracker
    restarted away from its last output), otherwise the frame's true mask deformed by :func:`deform_mask`
    (each deformation drawn with its own probability)."""

    own_prob: float = 0.4
    none_prob: float = 0.05
    affine_prob: float = 0.8
    shift: float = 0.1  # of the object's size
    scale: float = 0.12
    degrees: float = 10.0
    warp_prob: float = 0.5
    warp: float = 0.06  # smooth displacement, of the object's size
    morph_prob: float = 0.5
    morph: float = 0.06  # dilation or erosion radius, of the object's size
    hole_prob: float = 0.3
    spill_prob: float = 0.3
    coarse_prob: float = 0.3
    empty_prob: float = 0.03


def _object_size(mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    return float(max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1))


def _blob(shape: tuple[int, int], centre: tuple[float, float], radius: float, rng: np.random.Generator) -> np.ndarray:
    """A random ellipse of about ``radius`` pixels around ``centre`` (x, y)."""
    blob = np.zeros(shape, np.uint8)
    axes = (max(1, int(radius * rng.uniform(0.5, 1.5))), max(1, int(radius * rng.uniform(0.5, 1.5))))
    cv2.ellipse(blob, (int(centre[0]), int(centre[1])), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return blob.astype(bool)


def deform_mask(
    mask: np.ndarray, rng: np.random.Generator, sim: PriorSimulation = PriorSimulation(),
    neighbours: np.ndarray | None = None,
) -> np.ndarray:
    """``mask (H, W)`` bool deformed as a tracker's previous output might be; ``neighbours (H, W)`` bool, the
    other objects and look-alikes whose pixels a tracker can take. Returns ``(H, W)`` bool."""
    h, w = mask.shape
    if not mask.any() or rng.random() < sim.empty_prob:
        return np.zeros_like(mask)
    size = _object_size(mask)
    out = mask.astype(np.uint8)
    if rng.random() < sim.affine_prob:
        ys, xs = np.nonzero(mask)
        centre = (float(xs.mean()), float(ys.mean()))
        matrix = cv2.getRotationMatrix2D(centre, rng.uniform(-sim.degrees, sim.degrees), 1 + rng.uniform(-sim.scale, sim.scale))
        matrix[:, 2] += rng.uniform(-sim.shift, sim.shift, 2) * size
        out = cv2.warpAffine(out, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
    if rng.random() < sim.warp_prob:
        # A smooth displacement field: coarse noise, upsampled.
        grid = rng.normal(0, sim.warp * size, (2, 5, 5)).astype(np.float32)
        dx, dy = (cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC) for g in grid)
        xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        out = cv2.remap(out, xs + dx, ys + dy, cv2.INTER_NEAREST, borderValue=0)
    if rng.random() < sim.morph_prob:
        radius = max(1, int(round(rng.uniform(0.01, sim.morph) * size)))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        out = cv2.dilate(out, kernel) if rng.random() < 0.5 else cv2.erode(out, kernel)
    if rng.random() < sim.hole_prob and out.any():
        ys, xs = np.nonzero(out)
        i = int(rng.integers(len(xs)))
        out[_blob((h, w), (xs[i], ys[i]), rng.uniform(0.1, 0.3) * size, rng)] = 0
    if rng.random() < sim.spill_prob:
        if neighbours is not None and neighbours.any():
            ys, xs = np.nonzero(neighbours)
            i = int(rng.integers(len(xs)))
            out[neighbours & _blob((h, w), (xs[i], ys[i]), rng.uniform(0.2, 0.6) * size, rng)] = 1
        else:  # background next to the object
            ys, xs = np.nonzero(mask)
            i = int(rng.integers(len(xs)))
            angle = rng.uniform(0, 2 * np.pi)
            centre = (xs[i] + np.cos(angle) * 0.2 * size, ys[i] + np.sin(angle) * 0.2 * size)
            out[_blob((h, w), centre, rng.uniform(0.05, 0.2) * size, rng)] = 1
    if rng.random() < sim.coarse_prob:
        factor = int(rng.integers(4, 13))
        small = cv2.resize(out.astype(np.float32), (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
        out = (cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
    return out.astype(bool)
