"""The training forward and the trackers compute the same thing: for the same clip, prompts and weights,
``rollout`` gives every frame the logits that ``VideoPredictor`` and ``LiveTracker`` give. A mismatch here
(normalisation, resizing, coordinates, how a prompt's memory is encoded) would let a model learn what it
can never show."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import tiny_tracking_model

from memory import MemorySettings
from streams import FrameArray
from vos import LiveTracker, Prompt, TrackerSettings, VideoPredictor
from vos.model.transforms import preprocess
from vos.train.clips import Clip
from vos.train.prior import PriorSimulation
from vos.train.rollout import PromptSimulation, rollout
from vos.train.synthetic import generate_video
from vos.weights.checkpoint import build_model

# Training keeps memories in float32 (gradients flow through them); so do the trackers here.
SETTINGS = dict(memory=MemorySettings(storage_dtype=torch.float32, max_prompted_frames=None))


def _clip(size: int):
    # Longer than the 16 object pointers: a live tracker cannot know a video's length, so on shorter
    # videos the offline predictor (and training) normalise pointer distances by the length instead.
    video = generate_video(4, num_frames=18, size=(size, size), num_objects=2, num_distractors=1)
    ids = [i for i in (1, 2) if (video.masks[0] == i).any()]
    masks = torch.from_numpy(np.stack([video.masks == i for i in ids], 1))
    images = torch.cat([preprocess(f, size) for f in video.frames])
    return video, ids, Clip(images, masks)


def _training_logits(model, clip: Clip, sim: PromptSimulation, seed: int = 0,
                     prior: PriorSimulation = PriorSimulation()) -> dict[int, torch.Tensor]:
    outputs: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        rollout(model, clip, np.random.default_rng(seed), sim, outputs, prior)
    return outputs


@pytest.mark.parametrize("previous_mask", [False, True])
def test_training_forward_equals_the_offline_and_live_trackers_for_a_mask_prompt(previous_mask):
    model = tiny_tracking_model()
    if previous_mask:  # the decoder also sees each object's previous mask; in training, its own last output
        model = build_model(model.config.replace(track_with_previous_mask=True), model.state_dict())
    size = model.image_size
    video, ids, clip = _clip(size)
    train = _training_logits(model, clip, PromptSimulation(mask_prob=1.0, second_prompt_prob=0.0),
                             prior=PriorSimulation(own_prob=1.0, none_prob=0.0))

    predictor = VideoPredictor(model, FrameArray(video.frames), TrackerSettings(**SETTINGS))
    for i in ids:
        predictor.add_mask(0, i, video.masks[0] == i)
    offline = {r.frame_idx: r.logits for r in predictor.propagate()}

    tracker = LiveTracker(model, TrackerSettings.live(**SETTINGS))
    live = {}
    for t, frame in enumerate(video.frames):
        prompts = {i: Prompt.make(mask=video.masks[0] == i) for i in ids} if t == 0 else None
        live[t] = tracker.step(frame, prompts).logits

    assert sorted(train) == sorted(offline) == sorted(live) == list(range(len(video.frames)))
    for t in range(1, len(video.frames)):  # frame 0 is the mask itself: ±10 in training, blurred at the tracker
        np.testing.assert_allclose(offline[t].numpy(), train[t].numpy(), atol=1e-3, err_msg=f"offline, frame {t}")
        np.testing.assert_allclose(live[t].numpy(), train[t].numpy(), atol=1e-3, err_msg=f"live, frame {t}")
        assert ((offline[t] > 0) == (train[t] > 0)).float().mean() > 0.999


@pytest.mark.parametrize("box", [False, True])
def test_training_clicks_and_boxes_reach_the_decoder_as_the_trackers_send_them(box):
    """The first prompt of a clicked training frame, given to the predictor as a user would (pixel
    coordinates of the frame), gives the same logits."""
    model = tiny_tracking_model()
    size = model.image_size
    video, ids, clip = _clip(size)
    clip = Clip(clip.images[:1], clip.masks[:1, :1])  # one frame, one object: only the prompt
    sim = PromptSimulation(mask_prob=0.0, box_prob=1.0 if box else 0.0, max_corrections=0)
    calls = []
    original = model.predict_masks

    def spy(*args, **kwargs):
        calls.append((args[2].clone(), args[3].clone()))
        return original(*args, **kwargs)

    model.predict_masks = spy
    train = _training_logits(model, clip, sim)[0]
    model.predict_masks = original
    coords, labels = calls[0]
    predictor = VideoPredictor(model, FrameArray(video.frames[:1]), TrackerSettings(**SETTINGS))
    if box:
        result = predictor.add_points(0, ids[0], box=coords[0].flatten().tolist())
    else:
        result = predictor.add_points(0, ids[0], points=coords[0].tolist(), labels=labels[0].tolist())
    np.testing.assert_allclose(result.logits.numpy(), train.numpy(), atol=1e-4)
