"""Region similarity J and boundary F-measure per frame, as the official DAVIS tool defines them.

Every function takes stacks of binary masks ``(T, H, W)`` and returns one value per frame ``(T,)``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np


def region_similarity(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """J: intersection over union per frame; 1 where both masks are empty."""
    gt, pred = gt.astype(bool, copy=False), pred.astype(bool, copy=False)
    if void is not None:
        keep = ~void.astype(bool, copy=False)
        gt, pred = gt & keep, pred & keep
    return np.array([frame_region_similarity(g.view(np.uint8), p.view(np.uint8)) for g, p in zip(gt, pred)],
                    dtype=np.float64)


def frame_region_similarity(gt: np.ndarray, pred: np.ndarray) -> float:
    """J of one frame from 0/1 uint8 ``(H, W)`` masks."""
    inter = cv2.countNonZero(cv2.bitwise_and(gt, pred))
    union = cv2.countNonZero(gt) + cv2.countNonZero(pred) - inter
    return 1.0 if union == 0 else inter / union


def disk(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` uint8 disk: points with ``x² + y² <= r²``."""
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).astype(np.uint8)


def tolerance_pixels(height: int, width: int, bound_th: float = 0.008) -> int:
    """Boundary tolerance in pixels: a fraction of the image diagonal, rounded up (or pixels if ≥ 1)."""
    return int(bound_th) if bound_th >= 1 else int(math.ceil(bound_th * math.hypot(height, width)))


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary ``(H, W)`` mask: pixels differing from their right, lower or
    lower-right neighbour (the BSDS convention, offset half a pixel toward the origin); neighbours
    outside the image are ignored."""
    return _boundary(mask.astype(np.uint8, copy=False)).view(bool)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """:func:`boundary_map` of a 0/1 uint8 mask, as 0/1 uint8: a pixel differs from one of its 2×2
    block (itself, right, lower, lower-right) exactly when the block's max and min differ. OpenCV's
    morphology ignores pixels outside the image, as the definition does."""
    high = cv2.dilate(mask, _BLOCK, anchor=(0, 0))
    low = cv2.erode(mask, _BLOCK, anchor=(0, 0))
    return cv2.bitwise_xor(high, low)


_BLOCK = np.ones((2, 2), np.uint8)


def boundary_f(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None, bound_th: float = 0.008,
    radius: int | None = None,
) -> np.ndarray:
    """F: harmonic mean of boundary precision and recall within a tolerance disk, per frame. The disk's
    ``radius`` follows from ``bound_th`` and the frame size unless given (for masks cropped from a
    larger frame by :func:`support_box`)."""
    t, h, w = gt.shape
    if radius is None:
        radius = tolerance_pixels(h, w, bound_th)
    kernel = disk(radius)
    out = np.empty(t, dtype=np.float64)
    keep = None if void is None else ~void.astype(bool, copy=False)
    for i in range(t):
        g, p = gt[i].astype(bool, copy=False), pred[i].astype(bool, copy=False)
        if keep is not None:
            g, p = g & keep[i], p & keep[i]
        out[i] = frame_boundary_f(g.view(np.uint8), p.view(np.uint8), kernel)
    return out


def frame_boundary_f(gt: np.ndarray, pred: np.ndarray, kernel: np.ndarray) -> float:
    """F of one frame: ``gt`` and ``pred`` are 0/1 uint8 ``(H, W)`` masks, ``kernel`` the tolerance
    :func:`disk`. Work happens inside :func:`support_box`, where boundaries equal the whole frame's."""
    window = support_box(cv2.bitwise_or(gt, pred), kernel.shape[0] // 2)
    if window is None:  # both empty
        return 1.0
    return _f_measure(_boundary(gt[window]), _boundary(pred[window]), kernel)


def support_box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    """The bounding box of the non-zero pixels of ``mask`` grown by ``margin + 2`` pixels (clipped to the
    image), or ``None`` when there are none. Boundaries and their dilations computed inside it equal those
    of the whole image there: the box keeps two empty rows and columns around the masks unless it meets
    the image edge, where it keeps the edge itself, and every boundary pixel a dilation can reach is
    inside. A box found inside such a box is the same as one found in the whole image."""
    x, y, bw, bh = cv2.boundingRect(mask.astype(np.uint8, copy=False))
    if bw == 0:
        return None
    m = margin + 2
    h, w = mask.shape
    return slice(max(y - m, 0), min(y + bh + m, h)), slice(max(x - m, 0), min(x + bw + m, w))


def _f_measure(gt_b: np.ndarray, pred_b: np.ndarray, kernel: np.ndarray) -> float:
    """F from 0/1 uint8 boundary maps."""
    n_gt, n_pred = cv2.countNonZero(gt_b), cv2.countNonZero(pred_b)
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    precision = cv2.countNonZero(cv2.bitwise_and(pred_b, cv2.dilate(gt_b, kernel))) / n_pred
    recall = cv2.countNonZero(cv2.bitwise_and(gt_b, cv2.dilate(pred_b, kernel))) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)
