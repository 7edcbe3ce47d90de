"""The standard interactive-segmentation protocol (as in RITM and SAM's evaluations): the first click at the
object's deepest interior point, each next click at the deepest point of the larger error region, positive
where the object was missed, negative where background was taken; IoU after every click."""
from __future__ import annotations

import cv2
import numpy as np


def deepest_point(region: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` of the pixel of ``region (H, W)`` bool farthest from its boundary (and from the image's
    edge): where a person clicks."""
    dist = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return float(x), float(y)


def next_click(prediction: np.ndarray, target: np.ndarray) -> tuple[tuple[float, float], int] | None:
    """The next correction for ``prediction`` against ``target`` (both ``(H, W)`` bool): ``((x, y), label)``
    with label 1 inside a missed part of the object, 0 inside a false detection; ``None`` when they agree.

    Of the two error kinds, the click goes into the one whose deepest point lies deeper (the larger
    error region in the distance-transform sense, as the protocol defines it)."""
    best = None
    for error, label in ((target & ~prediction, 1), (prediction & ~target, 0)):
        if not error.any():
            continue
        dist = cv2.distanceTransform(np.pad(error, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
        depth = float(dist.max())
        if best is None or depth > best[0]:
            y, x = np.unravel_index(int(dist.argmax()), dist.shape)
            best = (depth, (float(x), float(y)), label)
    return None if best is None else (best[1], best[2])


def iou(prediction: np.ndarray, target: np.ndarray) -> float:
    """Intersection over union of two ``(H, W)`` bool masks; 1 when both are empty."""
    union = np.logical_or(prediction, target).sum()
    return 1.0 if union == 0 else float(np.logical_and(prediction, target).sum() / union)
