"""The offline predictor against the official sam2 video predictor, same random weights, frame by frame.

Each scenario is a list of actions replayed on both predictors; every mask either returns (after a
prompt and for every propagated frame) is compared. One object at a time (``batch_objects=False``) and
with PyTorch's own linear kernels the results are bit-identical; batched or on vos's packed oneDNN kernels
(the default), logits stay within 1e-3.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import build_official, random_state_dict, set_presence
from replay import check as _check
from replay import click as _click
from replay import disc_mask as _disc_mask
from replay import replay as _replay
from videos import davis_clip, moving_shapes, write_jpegs

from memory import MemorySettings
from vos.model.config import get_config
from vos.model.kernels import use_packed_kernels
from vos.model.sam2 import SAM2Model
from vos.tracking.core import TrackerSettings

SIZE = 256
NUM_FRAMES = 12


@pytest.fixture(scope="module", params=["sam2_hiera_tiny", "sam2.1_hiera_tiny"])
def models(request):
    official = build_official(request.param, SIZE, video=True)
    official.load_state_dict(random_state_dict(official.state_dict(), seed=1))
    set_presence(official, 2.0)
    ours = SAM2Model(get_config(request.param).replace(image_size=SIZE)).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    use_packed_kernels(ours, False)
    return official, ours


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_jpegs(moving_shapes(NUM_FRAMES, (96, 160)), tmp_path_factory.mktemp("shapes"))


@pytest.fixture(scope="module")
def real(tmp_path_factory, shared_dir):
    return write_jpegs(davis_clip(shared_dir, NUM_FRAMES), tmp_path_factory.mktemp("davis"))


@pytest.mark.parametrize("history, packed", [(True, False), (False, False), (True, True)], ids=["history", "bounded", "packed"])
@torch.no_grad()
def test_clicks_on_a_real_clip(models, real, history, packed):
    official, ours = models
    actions = [
        _click(0, 1, [[120, 70]], [1]),
        _click(0, 1, [[120, 70], [40, 30]], [1, 0]),
        ("propagate", None, None, False),
    ]
    _check(_replay(official, ours, real, actions, TrackerSettings(keep_history=history), packed=packed), exact=not packed)


@pytest.mark.parametrize("batch, memory_bytes", [(False, None), (True, None), (True, 1)],
                         ids=["one-by-one", "batched", "batched, memory attention split per object"])
@torch.no_grad()
def test_clicks_box_and_mask_for_three_objects(models, synthetic, batch, memory_bytes, monkeypatch):
    if memory_bytes is not None:  # objects whose memory keys exceed the budget go through memory attention alone
        monkeypatch.setattr("vos.tracking.core._BATCH_MEMORY_BYTES", memory_bytes)
    official, ours = models
    actions = [
        _click(0, 1, [[32, 38]], [1]),
        ("box", 0, 2, np.array([108, 55, 132, 78], np.float32)),
        ("mask", 0, 5, _disc_mask(synthetic)),
        ("propagate", None, None, False),
    ]
    pairs = _replay(official, ours, synthetic, actions, TrackerSettings(batch_objects=batch), packed=batch)
    _check(pairs, exact=not batch)


@torch.no_grad()
def test_object_added_mid_video_then_reverse(models, synthetic):
    official, ours = models
    actions = [
        _click(0, 1, [[32, 38]], [1]),
        ("propagate", None, None, False),
        ("box", 8, 2, np.array([92, 55, 116, 78], np.float32)),
        ("propagate", 8, None, False),
        ("propagate", 8, None, True),
    ]
    _check(_replay(official, ours, synthetic, actions, TrackerSettings(batch_objects=False)), exact=True)


@pytest.mark.parametrize("history", [True, False], ids=["history", "bounded"])
@torch.no_grad()
def test_correction_click_on_a_tracked_frame(models, real, history):
    official, ours = models
    actions = [
        _click(0, 1, [[120, 70]], [1]),
        ("propagate", None, 5, False),  # stop on frame 5, correct it, go on (bounded memory allows this)
        _click(5, 1, [[60, 100]], [0]),
        # The official predictor recomputes a corrected frame when propagation starts on it, vos keeps
        # the correction; from the next frame on both use the corrected memory.
        ("propagate", 6, None, False),
    ]
    _check(_replay(official, ours, real, actions, TrackerSettings(keep_history=history)), exact=True)


@torch.no_grad()
def test_several_prompted_frames_with_stride_and_capped_prompts(models, synthetic):
    official, ours = models
    actions = [
        _click(0, 1, [[32, 38]], [1]),
        _click(4, 1, [[44, 44]], [1]),
        _click(9, 1, [[59, 51]], [1]),
        ("propagate", None, None, False),
        ("propagate", 9, None, True),
    ]
    settings = TrackerSettings(memory=MemorySettings(temporal_stride=2, max_prompts_in_attention=2))
    attrs = {"memory_temporal_stride_for_eval": 2, "max_cond_frames_in_attn": 2}
    try:
        _check(_replay(official, ours, synthetic, actions, settings, attrs), exact=True)
    finally:
        official.memory_temporal_stride_for_eval, official.max_cond_frames_in_attn = 1, -1
