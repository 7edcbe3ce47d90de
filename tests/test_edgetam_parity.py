"""EdgeTAM against its official implementation (``edgetam-dimos``), same random weights: each stage, then
whole videos through vos's offline predictor and the official one.

The official EdgeTAM predictor is SAM 2's first (July 2024) video predictor: objects must all be added
before tracking starts, they share one memory selection, and its perceiver takes one object at a time
(several objects fail in it). vos tracks every object on its own, as ``sam2`` 1.1.0 does, so each object
of a scenario is compared with the official predictor given that object's prompts alone.
"""
from __future__ import annotations

import pytest
import torch
from edgetam_oracle import build_edgetam
from oracle_free import (
    check_image_encoder,
    max_diff,
    memory_encoder_inputs,
    random_state_dict,
    set_presence,
)
from replay import compare_alone, late_object_scenario
from videos import moving_shapes, write_jpegs

from vos.model.config import get_config
from vos.model.kernels import use_packed_kernels
from vos.model.sam2 import SAM2Model
from vos.tracking.core import TrackerSettings
from vos.weights.checkpoint import infer_config

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
    check_image_encoder(*models, levels=3)


@torch.no_grad()
def test_memory_encoder_and_perceiver(models):
    official, ours = models
    h = SIZE // 16
    pix, masks = memory_encoder_inputs(SIZE)
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


@pytest.mark.parametrize("batch", [False, True], ids=["one-by-one", "batched"])
@torch.no_grad()
def test_several_objects_a_late_one_a_correction_and_reverse(predictors, synthetic, batch):
    official, ours = predictors
    actions = late_object_scenario(synthetic, NUM_FRAMES)
    compare_alone(official, ours, synthetic, actions, TrackerSettings(batch_objects=batch), packed=batch)
