"""Fast mode: the trackers under bfloat16 autocast give float32 outputs and the masks of exact mode."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from videos import write_jpegs
from vos import TrackerSettings, VideoPredictor, load_model
from evaluation.interactive import deepest_point
from vos.live import LiveTracker
from vos.prompts import Prompt
from vos.train.synthetic import generate_video


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    video = generate_video(3, num_frames=10, size=(120, 160), num_objects=2, num_distractors=0)
    return write_jpegs(list(video.frames), tmp_path_factory.mktemp("clip")), video.masks


def _track(model, folder, click, precision):
    predictor = VideoPredictor(model, folder, TrackerSettings(precision=precision))
    predictor.add_points(0, 1, [click])
    return list(predictor.propagate(0))


def test_bfloat16_tracks_like_float32(clip):
    folder, masks = clip
    model = load_model()
    click = deepest_point(masks[0] == 1)
    exact, fast = _track(model, folder, click, "float32"), _track(model, folder, click, "bfloat16")
    assert all(r.logits.dtype == torch.float32 for r in fast)
    inter = [int((e.masks[0] & f.masks[0]).sum()) for e, f in zip(exact, fast)]
    union = [int((e.masks[0] | f.masks[0]).sum()) for e, f in zip(exact, fast)]
    assert exact[-1].masks[0].any()  # something is tracked, so the comparison means something
    # bf16 moves boundary pixels: over the clip the masks agree at IoU 0.97 or better, and on every frame
    # what differs lies within 2 pixels of exact mode's boundary but for a handful of pixels. Per-frame IoU
    # says little here: the embedded weights shrink the object to 100 pixels and fewer late in this clip (in
    # both modes), where 11 boundary pixels (seen on an AVX-512 BF16 CPU) are an IoU of 0.9.
    assert sum(inter) / sum(union) >= 0.97, (inter, union)
    kernel = np.ones((3, 3), np.uint8)
    for e, f in zip(exact, fast):
        mask = e.masks[0].astype(np.uint8)
        band = (cv2.dilate(mask, kernel, iterations=2) - cv2.erode(mask, kernel, iterations=2)).astype(bool)
        assert int(((e.masks[0] ^ f.masks[0]) & ~band).sum()) <= 5, (e.frame_idx, inter, union)
    assert not all(torch.equal(e.logits, f.logits) for e, f in zip(exact, fast))  # autocast really ran


def test_live_tracker_in_bfloat16(clip):
    folder, masks = clip
    from streams import open_video

    video = open_video(folder)
    tracker = LiveTracker(load_model(), TrackerSettings.live(precision="bfloat16"))
    prompt = {1: Prompt.make(points=[deepest_point(masks[0] == 1)], labels=[1])}
    results = [tracker.step(video[i].image, prompt if i == 0 else None) for i in range(4)]
    assert all(r.logits.dtype == torch.float32 and r.masks[0].any() for r in results)


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        TrackerSettings(precision="float8")
