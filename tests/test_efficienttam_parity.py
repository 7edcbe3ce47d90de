"""EfficientTAM against its official implementation (``efficient-track-anything``), same random weights: each
stage, then whole videos through vos's offline predictor and the official one, for the three kinds of memory
cross-attention (every memory token; pooled memories, variants _1 and _2).

The official predictor is SAM 2's first (July 2024) one, so each object is compared with the official
predictor given its prompts alone (see :func:`replay.compare_alone`).
"""
from __future__ import annotations

import pytest
import torch
from efficienttam_oracle import build_efficienttam
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

# 16x16 feature maps: ViT windows of 14 are padded, memories pool into 8x8. Small, so the tests are fast.
SIZE = 256
NUM_FRAMES = 10
VARIANTS = ["", "_1", "_2"]


def _pair(variant: str, video: bool, size: str = "ti"):
    official = build_efficienttam(size, variant, SIZE, video=video)
    official.load_state_dict(random_state_dict(official.state_dict(), seed=5))
    set_presence(official, 2.0)
    ours = SAM2Model(get_config(f"efficienttam_{size}{variant}").replace(image_size=SIZE)).eval()
    ours.load_state_dict(official.state_dict(), strict=True)
    use_packed_kernels(ours, False)
    return official, ours


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: v or "full")
def models(request):
    return _pair(request.param, video=False)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_jpegs(moving_shapes(NUM_FRAMES, (96, 160)), tmp_path_factory.mktemp("shapes"))


@pytest.mark.parametrize("size", ["ti", "s"])
def test_official_keys_give_the_efficienttam_configs(size):
    official, ours = _pair("_1", video=False, size=size)
    theirs = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == theirs
    # The ViT blocks are timm's; their MLPs carry SAM 2's keys, not timm's fc1/fc2.
    assert "image_encoder.trunk.blocks.0.mlp.layers.0.weight" in theirs
    assert "image_encoder.trunk.pos_embed" in theirs and "sam_mask_decoder.conv_s0.weight" not in theirs
    # The variants of one trunk share every key: the file name picks one, the base config otherwise.
    sd = official.state_dict()
    assert infer_config(sd).name == f"efficienttam_{size}"
    for suffix in ("", "_512x512", "_1", "_2"):
        assert infer_config(sd, file_name=f"efficienttam_{size}{suffix}").name == f"efficienttam_{size}{suffix}"
    assert infer_config(sd, image_size=SIZE, file_name=f"efficienttam_{size}_1") == ours.config


@torch.no_grad()
def test_image_encoder(models):
    check_image_encoder(*models, levels=1)  # one level: no high-resolution features for the decoder


@torch.no_grad()
def test_memory_encoder(models):
    official, ours = models
    h = SIZE // 16
    pix, masks = memory_encoder_inputs(SIZE)
    feats, pos = official._encode_new_memory([pix.flatten(2).permute(2, 0, 1)], [(h, h)], masks, False)
    mine, mine_pos = ours.encode_memory(pix, masks, torch.ones(3, 1))
    assert max_diff(feats, mine) <= 1e-4
    assert max_diff(pos[0], mine_pos) == 0.0


@pytest.mark.parametrize("frames, ptr_tokens", [(1, 0), (1, 8), (3, 0), (3, 8)])
@torch.no_grad()
def test_memory_attention(models, frames, ptr_tokens):
    """One memory frame is attended in full by every variant; several are pooled by _1 and _2."""
    official, ours = models
    gen = torch.Generator().manual_seed(2)
    n = (SIZE // 16) ** 2
    curr, curr_pos = torch.randn(2, n, 256, generator=gen), torch.randn(2, n, 256, generator=gen)
    memory = torch.randn(2, frames * n + ptr_tokens, 64, generator=gen)
    memory_pos = torch.randn(2, frames * n + ptr_tokens, 64, generator=gen)
    theirs = official.memory_attention(
        curr=[curr.transpose(0, 1)], curr_pos=[curr_pos.transpose(0, 1)], memory=memory.transpose(0, 1),
        memory_pos=memory_pos.transpose(0, 1), num_obj_ptr_tokens=ptr_tokens,
    )
    mine = ours.condition_on_memory(curr, curr_pos, memory, memory_pos, ptr_tokens)
    assert max_diff(theirs.transpose(0, 1), mine) <= 1e-4


def test_pooling_changes_the_result(models):
    """The pooled variants differ from full attention, so the comparisons above would see pooling done wrong."""
    _, ours = models
    gen = torch.Generator().manual_seed(4)
    n = (SIZE // 16) ** 2
    curr = torch.randn(1, n, 256, generator=gen)
    memory = torch.randn(1, 2 * n, 64, generator=gen)
    with torch.no_grad():
        out = ours.condition_on_memory(curr, torch.zeros_like(curr), memory, torch.zeros_like(memory))
        full = use_packed_kernels(SAM2Model(ours.config.replace(memory_pool=None)).eval(), False)
        full.load_state_dict(ours.state_dict())
        reference = full.condition_on_memory(curr, torch.zeros_like(curr), memory, torch.zeros_like(memory))
    assert (max_diff(out, reference) > 1e-2) == (ours.config.memory_pool is not None)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v or "full")
@torch.no_grad()
def test_several_objects_a_late_one_a_correction_and_reverse(synthetic, variant):
    official, ours = _pair(variant, video=True)
    actions = late_object_scenario(synthetic, NUM_FRAMES)
    batch = variant == "_2"  # objects one by one for two variants, batched (packed kernels) for one
    compare_alone(official, ours, synthetic, actions, TrackerSettings(batch_objects=batch), packed=batch)
