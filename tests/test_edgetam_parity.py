"""EdgeTAM against its official implementation (``edgetam-dimos``), same random weights: each stage, then
whole videos through vos's offline predictor and the official one.

The official EdgeTAM predictor is SAM 2's first (July 2024) video predictor: objects must all be added
before tracking starts, they share one memory selection, and its perceiver takes one object at a time
(several objects fail in it). vos tracks every object on its own, as ``sam2`` 1.1.0 does, so each object
of a scenario is compared with the official predictor given that object's prompts alone.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edgetam_oracle import build_edgetam
from oracle_free import max_diff, random_state_dict, set_presence
from replay import click, disc_mask
from streams import open_video
from videos import moving_shapes, write_jpegs
from vos.checkpoint import infer_config
from vos.config import get_config
from vos.inference_core import TrackerSettings
from vos.kernels import use_packed_kernels
from vos.model import SAM2Model
from vos.transforms import preprocess
from vos.video_predictor import VideoPredictor

SIZE = 512  # memory maps of 32x32: the perceiver's 16x16 windows hold 2x2 pixels each
NUM_FRAMES = 10


def _pair(video: bool):
    official = build_edgetam(SIZE, video=video)
    official.load_state_dict(random_state_dict(official.state_dict(), seed=3))
    set_presence(official, 2.0)
    ours = SAM2Model(get_config("edgetam").replace(image_size=SIZE)).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    use_packed_kernels(ours, False)
    return official, ours


@pytest.fixture(scope="module")
def models():
    return _pair(video=False)


@pytest.fixture(scope="module")
def predictors():
    return _pair(video=True)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_jpegs(moving_shapes(NUM_FRAMES, (96, 160)), tmp_path_factory.mktemp("shapes"))


def test_official_keys_give_the_edgetam_config(models):
    official, ours = models
    theirs = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == theirs
    # The RepViT trunk is timm's own module: its keys are timm's, under the official prefix.
    assert "image_encoder.trunk.body.stem.conv1.c.weight" in theirs
    assert infer_config(official.state_dict()).name == "edgetam"
    assert infer_config(official.state_dict(), image_size=SIZE) == ours.config


@torch.no_grad()
def test_image_encoder(models):
    official, ours = models
    images = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    theirs = official.forward_image(images)
    mine = ours.encode_image(images)
    assert len(mine.backbone_fpn) == len(theirs["backbone_fpn"]) == 3
    for t, m in zip(theirs["backbone_fpn"] + theirs["vision_pos_enc"], mine.backbone_fpn + mine.vision_pos_enc):
        assert max_diff(t, m) <= 1e-4


@torch.no_grad()
def test_memory_encoder_and_perceiver(models):
    official, ours = models
    gen = torch.Generator().manual_seed(1)
    h = SIZE // 16
    pix = torch.randn(3, 256, h, h, generator=gen)
    masks = 4 * torch.randn(3, 1, SIZE, SIZE, generator=gen)
    scores = torch.tensor([[3.0], [-2.0], [1.0]])
    # The official perceiver takes one mask at a time (its 2D latents are a view of an expanded tensor).
    theirs = [official._encode_new_memory([pix[i : i + 1].flatten(2).permute(2, 0, 1)], [(h, h)], masks[i : i + 1],
                                          scores[i : i + 1], False) for i in range(3)]
    feats, pos = torch.cat([t[0] for t in theirs]), torch.cat([t[1][0] for t in theirs])
    mine, mine_pos = ours.encode_memory(pix, masks, scores)
    assert feats.shape == (3, 512, 64)  # 256 global latents, then 16x16 window latents
    assert max_diff(feats, mine.transpose(1, 2)) <= 1e-4
    assert max_diff(pos, mine_pos.transpose(1, 2)) == 0.0


@torch.no_grad()
def test_memory_attention_over_compressed_memories(models):
    official, ours = models
    gen = torch.Generator().manual_seed(2)
    n, frames, ptr_tokens = (SIZE // 16) ** 2, 3, 8
    curr, curr_pos = torch.randn(2, n, 256, generator=gen), torch.randn(2, n, 256, generator=gen)
    memory = torch.randn(2, frames * 512 + ptr_tokens, 64, generator=gen)
    memory_pos = torch.randn(2, frames * 512 + ptr_tokens, 64, generator=gen)
    theirs = official.memory_attention(
        curr=[curr.transpose(0, 1)], curr_pos=[curr_pos.transpose(0, 1)], memory=memory.transpose(0, 1),
        memory_pos=memory_pos.transpose(0, 1), num_obj_ptr_tokens=ptr_tokens, num_spatial_mem=frames,
    )
    mine = ours.condition_on_memory(curr, curr_pos, memory, memory_pos, ptr_tokens)
    assert max_diff(theirs.transpose(0, 1), mine) <= 1e-4


def _official_alone(official, folder, actions, obj: int) -> dict[tuple[str, int], torch.Tensor]:
    """The official predictor on the prompts of object ``obj`` alone and every propagation: logits
    ``(1, 1, H, W)`` by (step, frame)."""
    video = open_video(folder)
    state = official.init_state(str(folder))
    state["images"] = torch.cat([preprocess(video[i].image, SIZE) for i in range(len(video))])
    state["cached_features"] = {}
    out = {}
    for step, (kind, *args) in enumerate(actions):
        if kind == "propagate":
            if state["obj_ids"]:  # the object's prompts may all come later
                for frame, _, logits in official.propagate_in_video(state, *args):
                    out[step, frame] = logits
        elif args[1] == obj:
            frame = args[0]
            if kind == "points":
                _, _, logits = official.add_new_points_or_box(state, frame, obj, points=args[2], labels=args[3])
            elif kind == "box":
                _, _, logits = official.add_new_points_or_box(state, frame, obj, box=args[2])
            else:
                _, _, logits = official.add_new_mask(state, frame, obj, torch.from_numpy(args[2]))
            out[step, frame] = logits
    return out


def _ours(model, folder, actions, settings) -> dict[tuple[str, int], tuple[list[int], torch.Tensor]]:
    """vos's predictor on all the prompts: ``(obj_ids, logits (N, 1, H, W))`` by (step, frame)."""
    predictor = VideoPredictor(model, open_video(folder), settings)
    out = {}
    for step, (kind, *args) in enumerate(actions):
        if kind == "propagate":
            out.update({(step, r.frame_idx): (r.obj_ids, r.logits) for r in predictor.propagate(*args)})
        else:
            frame, obj = args[:2]
            if kind == "points":
                r = predictor.add_points(frame, obj, args[2], args[3])
            elif kind == "box":
                r = predictor.add_points(frame, obj, box=args[2])
            else:
                r = predictor.add_mask(frame, obj, args[2])
            out[step, frame] = (r.obj_ids, r.logits)
    return out


def _compare(official, ours, folder, actions, settings, packed: bool) -> None:
    use_packed_kernels(ours, packed)
    try:
        mine = _ours(ours, folder, actions, settings)
    finally:
        use_packed_kernels(ours, False)
    objects = sorted({a[2] for a in actions if a[0] != "propagate"})
    compared = visible = 0
    for obj in objects:
        theirs = _official_alone(official, folder, actions, obj)
        for key, logits in theirs.items():
            ids, ours_logits = mine[key]
            row = ids.index(obj)
            assert max_diff(logits, ours_logits[row : row + 1]) <= 1e-3, (obj, key)
            assert torch.equal(logits > 0, ours_logits[row : row + 1] > 0), (obj, key)
            compared += 1
            visible += bool((logits > 0).any())
    # Every step and frame the official predictor produced was compared, and objects are mostly visible.
    assert compared >= len(objects) * NUM_FRAMES and visible >= compared // 2


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batched"])
@torch.no_grad()
def test_several_objects_a_late_one_a_correction_and_reverse(predictors, synthetic, batch):
    official, ours = predictors
    actions = [
        click(0, 1, [[32, 38]], [1]),
        ("box", 0, 2, np.array([108, 55, 132, 78], np.float32)),
        ("mask", 0, 5, disc_mask(synthetic)),
        ("propagate", None, 6, False),  # frames 0-6
        click(6, 1, [[60, 44]], [0]),  # a correction on a tracked frame
        ("propagate", 7, None, False),
        ("box", 5, 3, np.array([100, 55, 124, 78], np.float32)),  # an object joining on frame 5
        ("propagate", 5, None, False),
        ("propagate", NUM_FRAMES - 1, None, True),  # and back over the whole video
    ]
    _compare(official, ours, synthetic, actions, TrackerSettings(batch_objects=batch), packed=batch)
