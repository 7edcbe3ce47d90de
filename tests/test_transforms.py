"""Pre- and post-processing: resizing like the official loader, hole filling, non-overlap."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from vos.model.transforms import (
    PIXEL_MEAN,
    PIXEL_STD,
    fill_holes,
    non_overlapping,
    preprocess,
    to_video_resolution,
)


def test_preprocess_is_close_to_the_official_pil_resize():
    rng = np.random.default_rng(0)
    image = (rng.random((90, 160, 3)) * 255).astype(np.uint8)
    image = np.asarray(Image.fromarray(image).resize((320, 180)))  # smooth, camera-like content
    for size in (64, 256):
        ours = preprocess(image, size)[0].permute(1, 2, 0).numpy()
        ours = (ours * np.array(PIXEL_STD) + np.array(PIXEL_MEAN)) * 255
        pil = np.asarray(Image.fromarray(image).resize((size, size)), dtype=np.float64)
        diff = np.abs(ours - pil)
        # PIL's cubic kernel (a = -0.5) is softer than torch's (a = -0.75): a few grey levels at edges.
        assert diff.mean() < 0.5 and diff.max() <= 6.0, (size, diff.mean(), diff.max())


def test_fill_holes_fills_small_background_components_only():
    logits = torch.full((1, 1, 12, 12), 5.0)
    logits[0, 0, 2:4, 2:4] = -3.0  # a 4-pixel hole: filled
    logits[0, 0, 6:11, 6:11] = -3.0  # a 25-pixel hole: kept
    out = fill_holes(logits, max_area=8)
    assert torch.all(out[0, 0, 2:4, 2:4] == 0.1)
    assert torch.all(out[0, 0, 6:11, 6:11] == -3.0)
    assert torch.equal(fill_holes(logits, 0), logits)


def test_non_overlapping_keeps_only_the_best_object_per_pixel():
    logits = torch.tensor([[[[3.0, -1.0]]], [[[2.0, 4.0]]]])
    out = non_overlapping(logits)
    assert out.tolist() == [[[[3.0, -10.0]]], [[[-10.0, 4.0]]]]
    assert torch.equal(non_overlapping(logits[:1]), logits[:1])


def test_to_video_resolution_is_bilinear():
    low = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert to_video_resolution(low, (4, 4)) is low
    assert to_video_resolution(low, (8, 12)).shape == (1, 1, 8, 12)
