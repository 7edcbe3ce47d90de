"""Prompts written to a file and replayed: the file format's round trip, a mask refined by clicks, the one
merge rule, the decoder's mask choice, and the predictor's cache of encoded frames."""
from __future__ import annotations

import numpy as np
import pytest
from tiny import tiny_tracking_model
from videos import moving_shapes, write_jpegs

from streams import FrameArray
from vos import LiveTracker, TrackerSettings, VideoPredictor
from vos.sam2_compat import SAM2VideoPredictor
from vos.tracking.prompts import (
    FramePrompt,
    Prompt,
    PromptError,
    merge_prompts,
    read_prompt_file,
    write_prompt_file,
)


@pytest.fixture(scope="module")
def frames():
    return FrameArray(moving_shapes(6, (48, 80)))


def _prompts(size=(48, 80)):
    mask = np.zeros(size, bool)
    mask[10:30, 12:40] = True
    return [
        FramePrompt(0, 1, Prompt.make(points=[[10.25, 5.5], [31, 20]], labels=[1, 0])),
        FramePrompt(2, 255, Prompt.make(mask=mask)),
        FramePrompt(2, 255, Prompt.make(points=[[1 / 3, 2 / 3]], labels=[0])),
        FramePrompt(1, 2, Prompt.make(box=[1.1, 2, 20.7, 19])),
    ]


def test_a_prompt_file_reads_back_to_the_same_values_in_the_same_order(tmp_path):
    prompts = _prompts()
    path = write_prompt_file(tmp_path / "prompts.json", prompts)
    back = read_prompt_file(path)
    assert [(p.frame, p.obj_id) for p in back] == [(p.frame, p.obj_id) for p in prompts]
    for a, b in zip(prompts, back):
        for key in ("points", "labels", "box", "mask"):
            x, y = getattr(a.prompt, key), getattr(b.prompt, key)
            assert (x is None and y is None) or (np.array_equal(x, y) and x.dtype == y.dtype), key
    assert sorted(p.name for p in (tmp_path / "prompts-masks").iterdir()) == ["0001-frame2-obj255.png"]
    write_prompt_file(path, prompts[:1])  # the masks of the earlier file go with it
    assert not (tmp_path / "prompts-masks").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts.json"]  # no temporary folder left


def test_a_failed_write_keeps_the_earlier_prompt_file_and_its_masks(tmp_path, monkeypatch):
    import streams.files

    path = write_prompt_file(tmp_path / "prompts.json", _prompts())
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def full_disk(target, write, suffix=".tmp"):
        raise streams.files.WriteError(f"{target}: cannot be written (No space left on device)")

    monkeypatch.setattr(streams.files, "atomic_write", full_disk)
    other = [FramePrompt(3, 1, Prompt.make(mask=np.ones((48, 80), bool)))]
    with pytest.raises(OSError, match="No space left"):
        write_prompt_file(path, other)
    assert {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prompts-masks", "prompts.json"]


def test_clicks_after_a_mask_refine_it_and_a_mask_after_clicks_is_refused(frames):
    prompts = _prompts()
    merged = merge_prompts(prompts)
    assert [(p.frame, p.obj_id) for p in merged] == [(0, 1), (2, 255), (1, 2)]
    assert merged[1].prompt.mask is not None and merged[1].prompt.points.tolist() == [[1 / np.float32(3), 2 / np.float32(3)]]

    model = tiny_tracking_model()
    replayed = VideoPredictor(model, frames)
    replayed.add_prompts(prompts)
    by_hand = VideoPredictor(model, frames)
    by_hand.add_points(0, 1, [[10.25, 5.5], [31, 20]], [1, 0])
    by_hand.add_mask(2, 255, prompts[1].prompt.mask)
    by_hand.add_points(2, 255, [[1 / 3, 2 / 3]], [0], clear=False)
    by_hand.add_points(1, 2, box=[1.1, 2, 20.7, 19])
    for t in (0, 1, 2):
        assert np.array_equal(replayed.result(t).logits.numpy(), by_hand.result(t).logits.numpy())
    assert replayed.result(2).logits.numpy().tobytes() != VideoPredictor(model, frames).add_mask(2, 255, prompts[1].prompt.mask).logits.numpy().tobytes()

    with pytest.raises(PromptError, match="object 1, frame 0: a mask after clicks or a box; give the mask first"):
        merge_prompts([prompts[0], FramePrompt(0, 1, prompts[1].prompt)])


def test_one_merge_rule_for_prompts_given_at_once_and_clicks_added_one_by_one(frames):
    """Prompt.then is the one rule: clicks concatenate, a box joins them whenever it comes (a later one
    replaces it), a mask comes first. merge_prompts (replay) and add_points(clear=False) both follow it."""
    click, box, other, box2 = (Prompt.make(points=[[10, 12]]), Prompt.make(box=[2, 3, 30, 40]),
                               Prompt.make(points=[[20, 22]], labels=[0]), Prompt.make(box=[1, 1, 9, 9]))
    merged = merge_prompts([FramePrompt(0, 1, p) for p in (click, box, other, box2)])[0].prompt
    assert merged.points.tolist() == [[10, 12], [20, 22]] and merged.labels.tolist() == [1, 0]
    assert merged.box.tolist() == [1, 1, 9, 9]
    predictor = VideoPredictor(tiny_tracking_model(), frames)
    predictor.add_points(0, 1, click.points)
    for p in (box, other, box2):
        predictor.add_points(0, 1, p.points, p.labels, p.box, clear=False)
    added = predictor.core.objects[1].inputs[0]
    for key in ("points", "labels", "box"):
        assert np.array_equal(getattr(added, key), getattr(merged, key)), key
    with pytest.raises(PromptError, match="object 1, frame 0: a mask after clicks or a box"):
        merge_prompts([FramePrompt(0, 1, box), FramePrompt(0, 1, Prompt.make(mask=np.ones((48, 80), bool)))])
    # A prompt may carry a mask and the clicks that refine it, on every front-end.
    refined = Prompt.make(points=[[20, 22]], mask=np.ones((48, 80), bool))
    assert LiveTracker(tiny_tracking_model()).step(frames[0].image, {1: refined}).obj_ids == [1]


def test_the_sam2_adapter_refuses_a_box_added_to_clicks_as_the_official_call_does(frames, tmp_path):
    adapter = SAM2VideoPredictor(tiny_tracking_model())
    state = adapter.init_state(str(write_jpegs([f.image for f in frames], tmp_path / "jpegs")))
    adapter.add_new_points_or_box(state, 0, 1, points=[[10, 12]], labels=[1])
    with pytest.raises(ValueError, match="cannot add box without clearing old points"):
        adapter.add_new_points_or_box(state, 0, 1, box=[2, 3, 30, 40], clear_old_points=False)


def test_an_ambiguous_click_offers_the_decoders_masks_the_best_one_shown(frames):
    model = tiny_tracking_model()
    predictor = VideoPredictor(model, frames, TrackerSettings())
    shown = predictor.add_points(0, 1, [[20, 20]]).mask(1)
    offered = predictor.candidates(0, 1)
    assert len(offered) == 3
    best = max(range(3), key=lambda k: offered[k][1])
    assert np.array_equal(offered[best][0], shown)
    predictor.add_points(0, 1, [[30, 20]], clear=False)  # two clicks: one mask
    assert predictor.candidates(0, 1) == []
    predictor.add_points(1, 1, [[20, 20]])
    list(predictor.propagate(0, max_frames=1))  # propagation takes the prompts as they are: no choice left
    assert predictor.candidates(1, 1) == []


def test_the_predictor_keeps_the_features_of_the_frames_used_last(frames):
    predictor = VideoPredictor(tiny_tracking_model(), frames, keep_encoded=2)
    encoded = []
    encode = predictor.core.encode
    predictor.core.encode = lambda image, index, size=None: encoded.append(index) or encode(image, index, size)
    for t in (0, 1, 0, 1, 2, 0):
        predictor.add_points(t, 1, [[20, 20]])
    assert encoded == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="keep_encoded must be at least 1"):
        VideoPredictor(predictor.core.model, frames, keep_encoded=0)
