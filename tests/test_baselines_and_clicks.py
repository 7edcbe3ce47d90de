"""The untrained reference trackers and the interactive click protocol used to measure the embedded model."""
from __future__ import annotations

import cv2
import numpy as np

from evaluation.baselines import copy_first_mask, flow_warp
from evaluation.interactive import deepest_point, iou, next_click


def _moving_square(frames: int = 5, shift: int = 3):
    """A textured square moving right over a textured background, with its true masks."""
    rng = np.random.default_rng(0)
    smooth = lambda shape: cv2.GaussianBlur(rng.uniform(0, 255, shape).astype(np.float32), (0, 0), 2).astype(np.uint8)
    background, texture = smooth((64, 96, 3)) // 2, smooth((20, 20, 3)) // 2 + 128
    images, masks = [], []
    for t in range(frames):
        image, mask = background.copy(), np.zeros((64, 96), np.uint8)
        x = 10 + shift * t
        image[20:40, x : x + 20], mask[20:40, x : x + 20] = texture, 1
        images.append(image)
        masks.append(mask)
    return images, masks


def test_copy_first_mask_repeats_the_first_mask():
    images, masks = _moving_square()
    out = list(copy_first_mask(images, masks[0]))
    assert len(out) == len(images) and all(np.array_equal(m, masks[0]) for m in out)


def test_flow_warp_follows_a_moving_object_better_than_copying():
    images, masks = _moving_square()
    warped = list(flow_warp(images, masks[0]))
    assert len(warped) == len(images) and np.array_equal(warped[0], masks[0])
    copied = [iou(masks[0] > 0, m > 0) for m in masks]
    followed = [iou(w > 0, m > 0) for w, m in zip(warped, masks)]
    assert followed[-1] > 0.8 and followed[-1] > copied[-1] + 0.2
    assert set(np.unique(warped[-1])) <= {0, 1}


def test_deepest_point_is_the_centre_of_a_square():
    mask = np.zeros((50, 50), bool)
    mask[10:31, 20:41] = True
    assert deepest_point(mask) == (30.0, 20.0)


def test_next_click_goes_into_the_larger_error_with_the_right_label():
    target = np.zeros((60, 60), bool)
    target[10:50, 10:50] = True
    missed = target.copy()
    missed[10:50, 30:50] = False  # half the object missed: a positive click in the missed half
    (x, y), label = next_click(missed, target)
    assert label == 1 and target[int(y), int(x)] and not missed[int(y), int(x)]
    spilled = target.copy()
    spilled[0:60, 50:60] = True  # a wide false detection, deeper than any miss: a negative click there
    (x, y), label = next_click(spilled, target)
    assert label == 0 and spilled[int(y), int(x)] and not target[int(y), int(x)]
    assert next_click(target, target) is None
    assert iou(target, target) == 1.0 and iou(np.zeros_like(target), np.zeros_like(target)) == 1.0
