"""The per-frame path exists once: InferenceCore decides for every front-end (track_frame: track a frame and
apply its prompts; apply_prompts: prompts between propagations), its results are complete when returned,
and a failure part way changes nothing."""
from __future__ import annotations

import ast
from pathlib import Path

import cv2

import numpy as np
import pytest
import torch
from tiny import tiny_tracking_model
from videos import moving_shapes

from vos.tracking.core import InferenceCore, TrackerSettings
from vos.tracking.prompts import Prompt, PromptError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model():
    return tiny_tracking_model()


def _calls(module: str) -> set[str]:
    tree = ast.parse((ROOT / module).read_text())
    return {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}


def test_front_ends_leave_every_per_frame_decision_to_the_core():
    decisions = {"track", "prompt", "encode_prompted", "remember", "add", "prune", "select", "predict_masks",
                 "encode_memory", "mask_as_output", "condition_on_memory", "condition_on_memories"}
    for module in ("vos/tracking/video_predictor.py", "vos/tracking/live_tracker.py"):
        assert not _calls(module) & decisions, module
        assert "track_frame" in _calls(module), module
    assert "apply_prompts" in _calls("vos/tracking/video_predictor.py")
    # Training runs a frame through the same heads functions; the feedback clamp is written once.
    rollout = (ROOT / "vos/train/rollout.py").read_text()
    assert "tracked_heads(" in rollout and "clicked_heads(" in rollout and "memory_from_logits(" in rollout
    assert "clamp(" not in rollout
    hits = [p for p in (ROOT / "vos").rglob("*.py") if "clamp(-32" in p.read_text()]
    assert hits == []


def test_both_runtimes_declare_the_one_model_interface_and_the_core_asks_nothing_else():
    import inspect

    from vos.export.runtime import OnnxModel
    from vos.model.interface import TrackingModel
    from vos.model.sam2 import SAM2Model

    methods = [n for n, v in vars(TrackingModel).items() if inspect.isfunction(v) and not n.startswith("_")]
    assert {"encode_image", "condition_on_memories", "predict_masks", "encode_memory"} <= set(methods)
    for implementation in (SAM2Model, OnnxModel):
        assert TrackingModel in implementation.__mro__  # declared, not only matching
        for name in methods:
            ours, declared = inspect.signature(getattr(implementation, name)), inspect.signature(getattr(TrackingModel, name))
            assert list(ours.parameters) == list(declared.parameters), (implementation.__name__, name)
    assert (SAM2Model.supports_autocast, OnnxModel.supports_autocast) == (True, False)
    core = (ROOT / "vos/tracking/core.py").read_text()
    assert "isinstance(model" not in core and "nn.Module" not in core and "SAM2Model" not in core


def test_a_tracked_frame_returns_complete_outputs_and_advances_the_state(model):
    frames = moving_shapes(3, (48, 80))
    core = InferenceCore(model, TrackerSettings.live())
    out = core.track_frame(core.encode(frames[0], 0), {1: Prompt.make(points=[[20, 20]])})
    assert core.obj_ids == [1] and out[1].prompted and out[1].memory is not None  # encoded before returned
    assert core.objects[1].bank.prompted_frames == [0]
    with pytest.raises(Exception):  # results are frozen: nothing is changed after the step
        out[1].memory = None
    out = core.track_frame(core.encode(frames[1], 1))
    assert not out[1].prompted and out[1].memory is not None and sorted(core.objects[1].outputs) == [1]


def test_a_failing_step_leaves_the_objects_as_they_were(model):
    frames = moving_shapes(3, (48, 80))
    core = InferenceCore(model, TrackerSettings.live())
    core.track_frame(core.encode(frames[0], 0), {1: Prompt.make(points=[[20, 20]])})
    obj = core.objects[1]
    before = (dict(obj.outputs), obj.bank.nbytes(), dict(obj.tracked))

    def discover(frame, result):  # finds an object under an id that is taken
        assert result.obj_ids == [1]
        return {1: Prompt.make(box=[0, 0, 10, 10])}

    with pytest.raises(PromptError, match="id 1, which is in use"):
        core.track_frame(core.encode(frames[1], 1), {2: Prompt.make(points=[[60, 30]])}, discover=discover)
    assert core.obj_ids == [1]
    assert (dict(obj.outputs), obj.bank.nbytes(), dict(obj.tracked)) == before


def test_offline_prompts_wait_for_commit_and_are_encoded_in_one_batch(model):
    frames = moving_shapes(3, (48, 80))
    core = InferenceCore(model, TrackerSettings(), num_frames=3)
    frame = core.encode(frames[0], 0)
    core.apply_prompts(frame, {1: Prompt.make(points=[[20, 20]])})
    core.apply_prompts(frame, {2: Prompt.make(points=[[60, 30]])})
    assert all(o.pending[0].memory is None and not o.bank.prompted_frames for o in core.objects.values())
    batches = []
    real = model.encode_memory
    model.encode_memory = lambda *a, **k: batches.append(a[1].shape[0]) or real(*a, **k)
    try:
        core.commit(lambda t: frame)
    finally:
        del model.encode_memory
    assert batches == [2]  # both objects prompted on frame 0 in one batch
    assert all(o.bank.prompted_frames == [0] and not o.pending for o in core.objects.values())
    with torch.no_grad():
        out = core.track_frame(core.encode(frames[1], 1))
    assert sorted(out) == [1, 2] and all(np.isfinite(o.object_score) for o in out.values())


@pytest.mark.parametrize("previous_mask", [False, True])
def test_a_model_that_tracks_with_the_previous_mask_sees_it_on_every_tracked_frame(model, previous_mask):
    from streams import FrameArray
    from vos import VideoPredictor
    from vos.tracking.core import PRIOR_LOGIT
    from vos.weights.checkpoint import build_model

    tracker = build_model(model.config.replace(track_with_previous_mask=previous_mask), model.state_dict())
    frames = moving_shapes(num_frames=5, size=(64, 64))
    disc = cv2.circle(np.zeros((64, 64), np.uint8), (int(64 * 0.2), int(64 * 0.4)), 64 // 6, 1, -1).astype(bool)
    seen = []
    original = tracker.predict_masks

    def spy(features, high_res, point_coords=None, point_labels=None, mask_inputs=None, multimask_output=False):
        seen.append(None if mask_inputs is None else mask_inputs.clone())
        return original(features, high_res, point_coords, point_labels, mask_inputs, multimask_output)

    tracker.predict_masks = spy
    predictor = VideoPredictor(tracker, FrameArray(frames))
    predictor.add_mask(0, 1, disc)
    seen.clear()  # the mask prompt's own pass
    results = list(predictor.propagate())
    tracked = seen[-(len(frames) - 1):]
    if not previous_mask:  # SAM 2's tracking: no mask input at all
        assert all(m is None for m in tracked)
        return
    for t, prior in enumerate(tracked, 1):
        previous = results[t - 1].logits  # at video resolution; the prior is the decoder-resolution one
        assert prior.shape == (1, 1, 16, 16) and set(prior.unique().tolist()) <= {-PRIOR_LOGIT, PRIOR_LOGIT}
        low = torch.nn.functional.interpolate((previous > 0).float(), size=(16, 16), mode="area")
        agree = ((low > 0.5) == (prior > 0)).float().mean()
        assert agree > 0.9, (t, agree)


# ---------------------------------------------------------------- host syncs
_TO_HOST = ("item", "tolist", "cpu", "__float__", "__int__", "__bool__")  # (.numpy() needs .cpu() first on a GPU)


@pytest.mark.parametrize("objects", [1, 4])
def test_a_tracked_frame_reads_the_device_once_whatever_the_number_of_objects(objects, monkeypatch):
    """Every read of a tensor's values on the host is a sync on a GPU: the per-frame loop makes one for all
    objects together (their scores, which the memory bank decides on), and reading the masks one more."""
    from vos.tracking.live_tracker import LiveTracker

    frames = moving_shapes(6, (64, 96))
    tracker = LiveTracker(tiny_tracking_model())
    tracker.step(frames[0], {i + 1: Prompt.make(points=[[15 + 12 * i, 20]]) for i in range(objects)})
    tracker.step(frames[1])
    calls = []
    for name in _TO_HOST:
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _o=original, _n=name, **k: calls.append(_n) or _o(self, *a, **k))
    for image in frames[2:]:
        tracker.step(image).masks
    monkeypatch.undo()
    assert len(calls) == 2 * len(frames[2:]), calls
