"""The live tracker against the offline predictor, bad input, outputs, and the SAM 2-style adapter."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_tracking_model
from videos import moving_shapes, write_jpegs

from streams import open_video
from vos.sam2_compat import SAM2VideoPredictor
from vos.sam2_compat.frames import Sam2Frames
from vos.tracking.core import TrackerSettings
from vos.tracking.live_tracker import FrameSizeError, LiveTracker
from vos.tracking.prompts import Prompt, PromptError
from vos.tracking.video_predictor import VideoPredictor

NUM_FRAMES = 24


@pytest.fixture(scope="module")
def model():
    return tiny_tracking_model()


@pytest.fixture(scope="module")
def frames():
    return moving_shapes(NUM_FRAMES, (48, 80))


@pytest.fixture(scope="module")
def folder(frames, tmp_path_factory):
    return write_jpegs(frames, tmp_path_factory.mktemp("shapes"))


def _disc(size=(48, 80)):
    h, w = size
    yy, xx = np.mgrid[:h, :w]
    return (xx - 0.2 * w) ** 2 + (yy - 0.4 * h) ** 2 <= (h / 6) ** 2


@pytest.fixture(params=[None, 1], ids=["default-threads", "one-thread"])
def threads(request):
    """Kernels may block work differently with one thread; live and offline must still agree."""
    before = torch.get_num_threads()
    if request.param:
        torch.set_num_threads(request.param)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batched"])
def test_live_tracker_matches_offline_predictor(model, folder, batch, threads):
    """Objects prompted on frame 0, one added on frame 7, a re-prompt on frame 12: frame for frame equal."""
    video = open_video(folder)
    frames = [video[i].image for i in range(len(video))]
    click = Prompt.make(points=[[16, 19]])
    box = Prompt.make(box=[54, 28, 66, 40])
    late = Prompt.make(mask=_disc())
    fix = Prompt.make(points=[[30, 25], [5, 5]], labels=[1, 0])

    live = LiveTracker(model, TrackerSettings.live(batch_objects=batch))
    live_results = []
    for i, image in enumerate(frames):
        prompts = {0: {1: click, 2: box}, 7: {3: late}, 12: {1: fix}}.get(i)
        live_results.append(live.step(image, prompts))

    offline = VideoPredictor(model, video, TrackerSettings(corrections_as_prompts=True, batch_objects=batch))
    offline.add_points(0, 1, click.points, click.labels)
    offline.add_points(0, 2, box=box.box)
    results = list(offline.propagate(0, 6))
    offline.add_mask(7, 3, late.mask)
    results += list(offline.propagate(7, 4))
    list(offline.propagate(12, 0))  # track frame 12, then correct it
    offline.add_points(12, 1, fix.points, fix.labels)
    results += list(offline.propagate(12))

    assert [r.frame_idx for r in results] == list(range(NUM_FRAMES))
    for a, b in zip(live_results, results):
        assert a.obj_ids == b.obj_ids, a.frame_idx
        if batch:
            assert (a.logits - b.logits).abs().max() <= 1e-3, a.frame_idx
        else:
            assert torch.equal(a.logits, b.logits), a.frame_idx
            assert np.array_equal(a.masks, b.masks)
    assert any(r.masks.any() for r in live_results)


def test_live_memory_is_flat(model, frames):
    tracker = LiveTracker(model)
    tracker.step(frames[0], {1: Prompt.make(points=[[16, 19]]), 2: Prompt.make(box=[54, 28, 66, 40])})
    sizes = []
    for i in range(1, 200):
        tracker.step(frames[i % NUM_FRAMES])
        sizes.append(tracker.memory_bytes())
    assert sizes[30] == sizes[-1] == max(sizes)


def test_offline_predictor_memory_is_bounded_without_history(model, frames, tmp_path):
    folder = write_jpegs([frames[i % NUM_FRAMES] for i in range(80)], tmp_path / "long")
    predictor = VideoPredictor(model, folder, TrackerSettings(keep_history=False))
    predictor.add_points(0, 1, [[16, 19]])
    sizes = [predictor.memory_bytes() for _ in predictor.propagate()]
    assert max(sizes) == sizes[30] == sizes[-2]  # flat after the first 16 frames (less on the last)


def test_live_tracker_rejects_bad_input_and_keeps_its_state(model, frames):
    tracker = LiveTracker(model)
    with pytest.raises(PromptError, match="nothing to track"):
        tracker.step(frames[0])
    with pytest.raises(PromptError, match=r"object 1, frame 0: click \(90, 10\) is outside the 80x48 frame"):
        tracker.step(frames[0], {1: Prompt.make(points=[[90, 10]])})
    with pytest.raises(PromptError, match="object 2, frame 0: box .* has zero area"):
        tracker.step(frames[0], {2: Prompt.make(box=[10, 10, 10, 30])})
    with pytest.raises(PromptError, match="mask is empty"):
        tracker.step(frames[0], {3: Prompt.make(mask=np.zeros((48, 80), bool))})
    with pytest.raises(PromptError, match="mask is 10x10, the video is 80x48"):
        tracker.step(frames[0], {3: Prompt.make(mask=np.ones((10, 10), bool))})
    assert tracker.obj_ids == [] and tracker.frame_index == -1

    reference = LiveTracker(model)
    prompts = {1: Prompt.make(points=[[16, 19]])}
    expected = [reference.step(frames[i], prompts if i == 0 else None) for i in range(4)]
    got = [tracker.step(frames[0], prompts), tracker.step(frames[1])]
    with pytest.raises(FrameSizeError, match="frame 2 is 40x30, the stream is 80x48"):
        tracker.step(np.zeros((30, 40, 3), np.uint8))
    with pytest.raises(PromptError, match="labels must be 1"):
        tracker.step(frames[2], {1: Prompt.make(points=[[5, 5]], labels=[7])})
    got += [tracker.step(frames[2]), tracker.step(frames[3])]
    assert [r.frame_idx for r in got] == [0, 1, 2, 3]
    for a, b in zip(got, expected):
        assert torch.equal(a.logits, b.logits)
    with pytest.raises(KeyError, match="object 9 is not tracked"):
        tracker.remove(9)


def test_live_tracker_adds_and_removes_objects_mid_stream(model, frames):
    tracker = LiveTracker(model)
    tracker.step(frames[0], {1: Prompt.make(points=[[16, 19]])})
    r = tracker.step(frames[1], {4: Prompt.make(box=[54, 28, 66, 40])})
    assert r.obj_ids == [1, 4] and r.logits.shape == (2, 1, 48, 80)
    tracker.remove(1)
    r = tracker.step(frames[2])
    assert r.obj_ids == [4] and r.visible.shape == (1,)


def test_offline_predictor_rejects_bad_input(model, folder):
    predictor = VideoPredictor(model, folder)
    with pytest.raises(PromptError, match="no objects to track"):
        next(predictor.propagate())
    with pytest.raises(PromptError, match=f"frame 99 does not exist: the video has {NUM_FRAMES} frames"):
        predictor.add_points(99, 1, [[10, 10]])
    with pytest.raises(PromptError, match="outside"):
        predictor.add_points(0, 1, [[-1, 10]])
    predictor.add_points(0, 1, [[10, 10]])
    with pytest.raises(KeyError, match="object 7 is not tracked"):
        predictor.remove_object(7)
    assert predictor.obj_ids == [1]
    predictor.add_points(0, 1, [[30, 30]], [0], clear=False)  # adds to the first click
    results = list(predictor.propagate())
    assert len(results) == NUM_FRAMES


def test_results_give_masks_label_maps_and_detections(model, folder):
    predictor = VideoPredictor(model, folder, TrackerSettings.vos_inference())
    predictor.add_points(0, 3, [[16, 19]])
    predictor.add_points(0, 5, box=[54, 28, 66, 40])
    result = next(predictor.propagate())
    assert result.masks.shape == (2, 48, 80) and result.masks.dtype == bool
    assert not (result.masks[0] & result.masks[1]).any()  # non-overlapping outputs
    labels = result.label_map()
    assert set(np.unique(labels)) <= {0, 3, 5}
    assert np.array_equal(labels == 3, result.mask(3))
    det = result.detections()
    assert set(det.tracker_id.tolist()) <= {3, 5} and det.mask.shape[1:] == (48, 80)
    for box, mask in zip(det.xyxy, det.mask):
        ys, xs = np.nonzero(mask)
        assert box.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]


def test_reverse_and_both_directions(model, folder):
    predictor = VideoPredictor(model, folder)
    predictor.add_points(10, 1, [[40, 25]])
    order = [r.frame_idx for r in predictor.propagate_both()]
    assert order == list(range(10, NUM_FRAMES)) + list(range(9, -1, -1))
    assert [r.frame_idx for r in predictor.propagate(5, 2, reverse=True)] == [5, 4, 3]
    assert [r.frame_idx for r in predictor.propagate(0, reverse=True)] == []  # as SAM 2's propagate_in_video


def test_both_directions_from_frame_1_reach_frame_0(model, folder):
    predictor = VideoPredictor(model, folder)
    predictor.add_points(1, 1, [[40, 25]])
    assert [r.frame_idx for r in predictor.propagate_both()] == list(range(1, NUM_FRAMES)) + [0]


def test_the_predictor_yields_each_frame_with_its_result(model, folder):
    predictor = VideoPredictor(model, folder)
    predictor.add_points(3, 1, [[40, 25]])
    pairs = list(predictor.track(direction="both", max_frames=2))
    assert [(f.index, r.frame_idx) for f, r in pairs] == [(t, t) for t in (3, 4, 5, 2, 1, 0)]
    video = open_video(folder)
    assert all(np.array_equal(f.image, video[f.index].image) for f, _ in pairs)
    with pytest.raises(ValueError, match="direction must be one of"):
        next(predictor.track(direction="sideways"))


def test_sam2_adapter_has_the_official_calls_and_shapes(model, folder):
    predictor = SAM2VideoPredictor(model)
    state = predictor.init_state(str(folder))
    frame_idx, obj_ids, masks = predictor.add_new_points_or_box(state, 0, 1, points=[[16, 19]], labels=[1])
    assert (frame_idx, obj_ids, tuple(masks.shape)) == (0, [1], (1, 1, 48, 80))
    _, obj_ids, masks = predictor.add_new_points_or_box(
        state, 0, 2, box=[54 / 80, 28 / 48, 66 / 80, 40 / 48], normalize_coords=False
    )
    direct = VideoPredictor(model, Sam2Frames(folder, model.image_size), predictor.settings)  # the adapter's frames
    direct.add_points(0, 2, box=[54, 28, 66, 40])
    assert torch.allclose(masks[1], direct.result(0).logits[0], atol=1e-5)
    _, obj_ids, _ = predictor.add_new_mask(state, 3, 3, torch.from_numpy(_disc()))
    assert obj_ids == [1, 2, 3]
    outputs = list(predictor.propagate_in_video(state, max_frame_num_to_track=5))
    assert [f for f, _, _ in outputs] == list(range(6))
    assert all(m.shape == (3, 1, 48, 80) for _, _, m in outputs)
    obj_ids, updated = predictor.remove_object(state, 3)
    assert obj_ids == [1, 2] and [f for f, _ in updated] == [3] and updated[0][1].shape == (2, 1, 48, 80)
    assert predictor.remove_object(state, 42) == ([1, 2], [])
    with pytest.raises(RuntimeError, match="Cannot remove object id 42"):
        predictor.remove_object(state, 42, strict=True)
    predictor.reset_state(state)
    assert state.obj_ids == []


@torch.no_grad()
def test_rope_tables_do_not_grow_with_the_memory():
    """Memory attention keeps one rotation table per grid size, however many memory frames and pointers
    it sees (a table per memory length would add megabytes per frame in a long run)."""
    from vos.model.memory_attention import MemoryAttention

    attention = MemoryAttention(d_model=32, num_layers=2, mem_dim=16, dim_feedforward=64, dropout=0.0).eval()
    n = 16  # a 4x4 grid
    for frames, pointers in [(1, 0), (2, 4), (3, 8), (7, 64), (5, 12)]:
        memory = torch.randn(1, frames * n + pointers, 16)
        out = attention(torch.randn(1, n, 32), torch.randn(1, n, 32), memory, torch.randn_like(memory), pointers)
        assert out.shape == (1, n, 32)
    for layer in attention.layers:
        assert len(layer.self_attn._angles) == len(layer.cross_attn_image._angles) == 1
