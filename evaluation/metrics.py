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
    t = gt.shape[0]
    inter = np.array([np.count_nonzero(gt[i] & pred[i]) for i in range(t)], dtype=np.float64)
    total = np.array([np.count_nonzero(gt[i]) + np.count_nonzero(pred[i]) for i in range(t)], dtype=np.float64)
    union = total - inter
    empty = np.isclose(union, 0)
    return np.where(empty, 1.0, inter / np.where(empty, 1.0, union))


def disk(radius: int) -> np.ndarray:
    """``(2r+1, 2r+1)`` uint8 disk: points with ``x² + y² <= r²``."""
    r = np.arange(-radius, radius + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).astype(np.uint8)


def tolerance_pixels(height: int, width: int, bound_th: float = 0.008) -> int:
    """Boundary tolerance in pixels: a fraction of the image diagonal, rounded up (or pixels if ≥ 1)."""
    return int(bound_th) if bound_th >= 1 else int(math.ceil(bound_th * math.hypot(height, width)))


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """One-pixel boundary of a binary ``(H, W)`` mask: pixels differing from their right, lower or
    lower-right neighbour (the BSDS convention, offset half a pixel toward the origin)."""
    seg = mask.astype(bool)
    east, south, south_east = np.zeros_like(seg), np.zeros_like(seg), np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    b[-1, :] = seg[-1, :] ^ east[-1, :]
    b[:, -1] = seg[:, -1] ^ south[:, -1]
    b[-1, -1] = False
    return b


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
        window = support_box(g | p, radius)
        if window is None:  # both empty
            out[i] = 1.0
            continue
        out[i] = _f_measure(boundary_map(g[window]), boundary_map(p[window]), kernel)
    return out


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
    n_gt, n_pred = int(gt_b.sum()), int(pred_b.sum())
    if n_gt == 0 and n_pred == 0:
        return 1.0
    if n_gt == 0 or n_pred == 0:
        return 0.0
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
    pred_dil = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
    precision = np.sum(pred_b & gt_dil) / n_pred
    recall = np.sum(gt_b & pred_dil) / n_gt
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))
