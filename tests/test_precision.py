"""Fast mode: the trackers under bfloat16 autocast give float32 outputs and the masks of exact mode."""
from __future__ import annotations

import pytest
import torch
from videos import write_jpegs

from evaluation.interactive import deepest_point
from vos import TrackerSettings, VideoPredictor, load_model
from vos.tracking.live_tracker import LiveTracker
from vos.tracking.prompts import Prompt
from vos.train.synthetic import generate_video
from vos.weights.checkpoint import build_model


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

    # bf16's arithmetic: with one mask from the decoder, each frame's logits stay within 3% of exact mode's
    # largest (about 1% seen) and masks differ only where exact mode's logit is near the threshold.
    single = build_model(model.config.replace(multimask_output_in_sam=False, multimask_output_for_tracking=False),
                         model.state_dict())
    exact, fast = _track(single, folder, click, "float32"), _track(single, folder, click, "bfloat16")
    assert all(r.logits.dtype == torch.float32 for r in fast)
    assert exact[-1].masks[0].any()  # something is tracked, so the comparison means something
    for e, f in zip(exact, fast):
        assert (f.logits - e.logits).abs().max() <= 0.03 * e.logits.abs().max(), e.frame_idx
        differ = e.masks[0] ^ f.masks[0]
        assert (e.logits[0, 0].abs().numpy()[differ] < 1.0).all(), e.frame_idx
    assert not all(torch.equal(e.logits, f.logits) for e, f in zip(exact, fast))  # autocast really ran

    # With the decoder's three candidates (the default), rounding can pick another one on a frame where their
    # predicted IoUs nearly tie (benchmarks/fast_mode_agreement.py): that frame's mask differs, and the
    # memory carries both modes back together; over the clip the masks still agree at IoU 0.97 or better.
    exact, fast = _track(model, folder, click, "float32"), _track(model, folder, click, "bfloat16")
    inter = sum(int((e.masks[0] & f.masks[0]).sum()) for e, f in zip(exact, fast))
    union = sum(int((e.masks[0] | f.masks[0]).sum()) for e, f in zip(exact, fast))
    assert inter / union >= 0.97, (inter, union)


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


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_without_native_support_is_said_once(monkeypatch, native):
    # Whatever this machine's CPU: fast mode runs either way, and where the CPU lacks native bfloat16 one
    # warning per process says it is slower than float32 there.
    import warnings

    import vos.tracking.core as core

    monkeypatch.setattr(core, "CPU_BFLOAT16", native)
    core.warn_without_cpu_bfloat16.cache_clear()
    model = load_model()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            core.InferenceCore(model, TrackerSettings(precision="bfloat16"))
        core.InferenceCore(model, TrackerSettings())
    said = [w for w in caught if "no native bfloat16" in str(w.message)]
    assert len(said) == (0 if native else 1)
    core.warn_without_cpu_bfloat16.cache_clear()
