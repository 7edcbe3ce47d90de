"""Every component against the official sam2 package with the very same random weights."""
from __future__ import annotations

import pytest
import torch
from oracle import build_official, max_diff, random_state_dict, set_presence

from vos.model.config import get_config
from vos.model.sam2 import SAM2Model

TOL = 1e-4
SIZE = 256
CONFIGS = ["sam2_hiera_tiny", "sam2.1_hiera_tiny", "sam2_hiera_base_plus", "sam2.1_hiera_base_plus"]


@pytest.fixture(scope="module", params=CONFIGS)
def pair(request):
    """(official model, our model, image features) sharing one random state dict."""
    torch.manual_seed(0)
    official = build_official(request.param, SIZE)
    state = random_state_dict(official.state_dict(), seed=1)
    official.load_state_dict(state)
    ours = SAM2Model(get_config(request.param).replace(image_size=SIZE)).eval()
    ours.load_state_dict(state, strict=True)
    images = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theirs_feats = official.forward_image(images)
        our_feats = ours.encode_image(images)
    return official, ours, images, theirs_feats, our_feats


def _heads_as_tuple(out):
    return (out.low_res_multimasks, out.high_res_multimasks, out.ious, out.low_res_masks, out.high_res_masks,
            out.obj_ptr, out.object_score)


def _assert_heads_equal(theirs, ours):
    names = ["low_res_multimasks", "high_res_multimasks", "ious", "low_res_masks", "high_res_masks", "obj_ptr",
             "object_score"]
    for name, a, b in zip(names, theirs, _heads_as_tuple(ours)):
        assert max_diff(a, b) <= TOL, name


@torch.no_grad()
def test_trunk_stage_outputs_match_official(pair):
    official, ours, images, _, _ = pair
    for a, b in zip(official.image_encoder.trunk(images), ours.image_encoder.trunk(images)):
        assert max_diff(a, b) <= TOL


@torch.no_grad()
def test_neck_features_and_position_encodings_match_official(pair):
    _, _, _, theirs, ours = pair
    assert len(theirs["backbone_fpn"]) == len(ours.backbone_fpn) == 3
    for a, b in zip(theirs["backbone_fpn"], ours.backbone_fpn):
        assert max_diff(a, b) <= TOL
    for a, b in zip(theirs["vision_pos_enc"], ours.vision_pos_enc):
        assert max_diff(a, b) <= TOL


@torch.no_grad()
def test_prompt_encoder_matches_official(pair):
    official, ours, *_ = pair
    coords = torch.tensor([[[10.0, 20.0], [180.0, 90.0], [3.0, 250.0]]]).repeat(2, 1, 1)
    labels = torch.tensor([[1, 0, 1], [2, 3, -1]], dtype=torch.int32)
    masks = torch.randn(2, 1, SIZE // 4, SIZE // 4)
    for boxes in (None, torch.tensor([[5.0, 6.0, 100.0, 120.0], [0.0, 0.0, 255.0, 255.0]])):
        for m in (None, masks):
            a = official.sam_prompt_encoder(points=(coords, labels), boxes=boxes, masks=m)
            b = ours.sam_prompt_encoder((coords, labels), boxes, m)
            assert max_diff(a[0], b[0]) <= TOL and max_diff(a[1], b[1]) <= TOL
    assert max_diff(official.sam_prompt_encoder.get_dense_pe(), ours.sam_prompt_encoder.get_dense_pe()) <= TOL


PROMPTS = {
    "one_click": (torch.tensor([[[60.0, 70.0]], [[200.0, 30.0]]]), torch.tensor([[1], [1]], dtype=torch.int32)),
    "clicks": (torch.tensor([[[60.0, 70.0], [90.0, 20.0]], [[200.0, 30.0], [10.0, 240.0]]]),
               torch.tensor([[1, 0], [1, 1]], dtype=torch.int32)),
    "box": (torch.tensor([[[20.0, 30.0], [150.0, 160.0]], [[0.0, 0.0], [255.0, 200.0]]]),
            torch.tensor([[2, 3], [2, 3]], dtype=torch.int32)),
}


@pytest.mark.parametrize("prompt", list(PROMPTS))
@pytest.mark.parametrize("multimask", [False, True])
@pytest.mark.parametrize("presence", [5.0, -5.0])
@torch.no_grad()
def test_mask_decoder_outputs_match_official(pair, prompt, multimask, presence):
    official, ours, _, theirs_feats, our_feats = pair
    set_presence(official, presence)
    set_presence(ours, presence)
    coords, labels = PROMPTS[prompt]
    theirs = official._forward_sam_heads(
        theirs_feats["vision_features"], {"point_coords": coords, "point_labels": labels}, None,
        theirs_feats["backbone_fpn"][:2], multimask,
    )
    out = ours.predict_masks(our_feats.vision_features, our_feats.backbone_fpn[:2], coords, labels, None, multimask)
    _assert_heads_equal(theirs, out)
    if presence < 0:
        assert (out.high_res_masks == -1024.0).all()


@pytest.mark.parametrize("with_clicks", [False, True])
@torch.no_grad()
def test_mask_prompt_with_and_without_clicks_matches_official(pair, with_clicks):
    official, ours, _, theirs_feats, our_feats = pair
    set_presence(official, 5.0)
    set_presence(ours, 5.0)
    mask_logits = 4 * torch.randn(2, 1, SIZE // 4, SIZE // 4, generator=torch.Generator().manual_seed(3))
    coords, labels = PROMPTS["one_click"] if with_clicks else (None, None)
    point_inputs = {"point_coords": coords, "point_labels": labels} if with_clicks else None
    theirs = official._forward_sam_heads(
        theirs_feats["vision_features"], point_inputs, mask_logits, theirs_feats["backbone_fpn"][:2], True
    )
    out = ours.predict_masks(our_feats.vision_features, our_feats.backbone_fpn[:2], coords, labels, mask_logits, True)
    _assert_heads_equal(theirs, out)


@torch.no_grad()
def test_mask_as_output_matches_official(pair):
    official, ours, _, theirs_feats, our_feats = pair
    mask = (torch.rand(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(4)) > 0.7).float()
    mask[1] = 0  # an empty mask: the object is absent
    theirs = official._use_mask_as_output(theirs_feats["vision_features"], theirs_feats["backbone_fpn"][:2], mask)
    out = ours.mask_as_output(our_feats.vision_features, our_feats.backbone_fpn[:2], mask)
    _assert_heads_equal(theirs, out)
    assert out.object_score.flatten().tolist() == [10.0, -10.0]


@pytest.mark.parametrize("binarize", [False, True])
@torch.no_grad()
def test_memory_encoder_matches_official(pair, binarize):
    official, ours, _, theirs_feats, our_feats = pair
    vision_feats = [x.flatten(2).permute(2, 0, 1) for x in theirs_feats["backbone_fpn"]]
    sizes = [tuple(x.shape[-2:]) for x in theirs_feats["backbone_fpn"]]
    logits = 3 * torch.randn(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    scores = torch.tensor([[2.0], [-2.0]])  # one present, one absent (2.1 adds no_obj_embed_spatial)
    official.binarize_mask_from_pts_for_mem_enc = binarize
    theirs = official._encode_new_memory(vision_feats, sizes, logits, scores, is_mask_from_pts=True)
    feats, pos = ours.encode_memory(our_feats.vision_features, logits, scores, binarize=binarize)
    assert max_diff(theirs[0], feats) <= TOL
    assert max_diff(theirs[1][0], pos) <= TOL


def _random_frame_output(ours, gen, present=True):
    m, c, s = ours.mem_dim, ours.hidden_dim, SIZE // 16
    return {
        "maskmem_features": torch.randn(2, m, s, s, generator=gen),
        "maskmem_pos_enc": [torch.randn(2, m, s, s, generator=gen)],
        "obj_ptr": torch.randn(2, c, generator=gen),
        "object_score_logits": torch.full((2, 1), 1.0 if present else -1.0),
    }


@pytest.mark.parametrize("reverse", [False, True])
@torch.no_grad()
def test_memory_attention_with_frames_and_pointers_matches_official(pair, reverse):
    """The official memory assembly (2 prompted frames, 8 tracked frames, their pointers) against ours
    assembled from the same outputs through our time and pointer encodings."""
    official, ours, _, theirs_feats, our_feats = pair
    gen = torch.Generator().manual_seed(6)
    num_frames, frame = 12, 9 if not reverse else 2
    cond = {0: _random_frame_output(ours, gen), 11: _random_frame_output(ours, gen)}
    tracked = [t for t in range(num_frames) if t not in cond and t != frame]
    non_cond = {t: _random_frame_output(ours, gen) for t in tracked}
    vision_feats = [x.flatten(2).permute(2, 0, 1) for x in theirs_feats["backbone_fpn"]]
    pos_embeds = [x.flatten(2).permute(2, 0, 1) for x in theirs_feats["vision_pos_enc"]]
    sizes = [tuple(x.shape[-2:]) for x in theirs_feats["backbone_fpn"]]
    theirs = official._prepare_memory_conditioned_features(
        frame, False, vision_feats[-1:], pos_embeds[-1:], sizes[-1:],
        {"cond_frame_outputs": cond, "non_cond_frame_outputs": non_cond}, num_frames, track_in_reverse=reverse,
    )

    # SAM 2's selection for this case, spelled out: all prompted frames at t_pos 0, then the 6 previous
    # frames in tracking direction; pointers from past prompted frames and the 15 previous frames.
    step = 1 if reverse else -1
    mem, mem_pos = [], []
    for out in cond.values():
        mem.append(out["maskmem_features"])
        mem_pos.append(out["maskmem_pos_enc"][0] + ours.memory_time_encoding(0).reshape(1, -1, 1, 1))
    for t_pos in range(1, ours.num_maskmem):
        t = frame + step * (ours.num_maskmem - t_pos)
        if t in non_cond:
            mem.append(non_cond[t]["maskmem_features"])
            mem_pos.append(non_cond[t]["maskmem_pos_enc"][0] + ours.memory_time_encoding(t_pos).reshape(1, -1, 1, 1))
    flat = lambda x: x.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, hw, C)
    memory, memory_pos = torch.cat([flat(x) for x in mem], 1), torch.cat([flat(x) for x in mem_pos], 1)
    sign = -1 if reverse else 1
    past_cond = [t for t in cond if (t >= frame if reverse else t <= frame)]
    signed = ours.config.use_signed_tpos_enc_to_obj_ptrs
    positions = [(frame - t) * sign if signed else abs(frame - t) for t in past_cond]
    pointers = [cond[t]["obj_ptr"] for t in past_cond]
    for d in range(1, min(num_frames, 16)):
        t = frame + step * d
        if not 0 <= t < num_frames:
            break
        if t in non_cond:
            positions.append(d)
            pointers.append(non_cond[t]["obj_ptr"])
    tokens, token_pos = ours.object_pointer_tokens(torch.stack(pointers, 1), torch.tensor(positions), min(num_frames, 16))
    memory, memory_pos = torch.cat([memory, tokens], 1), torch.cat([memory_pos, token_pos], 1)
    curr = our_feats.vision_features.flatten(2).transpose(1, 2)
    curr_pos = our_feats.vision_pos_enc[-1].flatten(2).transpose(1, 2)
    out = ours.condition_on_memory(curr, curr_pos, memory, memory_pos, tokens.shape[1])
    out = out.transpose(1, 2).reshape(theirs.shape)
    assert max_diff(theirs, out) <= TOL


@torch.no_grad()
def test_first_prompted_frame_uses_no_memory_embedding(pair):
    official, ours, _, theirs_feats, our_feats = pair
    vision_feats = [x.flatten(2).permute(2, 0, 1) for x in theirs_feats["backbone_fpn"]]
    pos_embeds = [x.flatten(2).permute(2, 0, 1) for x in theirs_feats["vision_pos_enc"]]
    sizes = [tuple(x.shape[-2:]) for x in theirs_feats["backbone_fpn"]]
    theirs = official._prepare_memory_conditioned_features(
        0, True, vision_feats[-1:], pos_embeds[-1:], sizes[-1:], {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}, 5
    )
    assert max_diff(theirs, ours.without_memory(our_feats.vision_features)) <= TOL


@pytest.mark.slow
@torch.no_grad()
def test_full_resolution_1024_matches_official():
    """Image encoder, a click and memory attention at the official 1024 input size (sam2.1 tiny)."""
    name = "sam2.1_hiera_tiny"
    official = build_official(name, 1024)
    state = random_state_dict(official.state_dict(), seed=7)
    official.load_state_dict(state)
    ours = SAM2Model(get_config(name)).eval()
    ours.load_state_dict(state, strict=True)
    images = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(8))
    theirs_feats, our_feats = official.forward_image(images), ours.encode_image(images)
    for a, b in zip(theirs_feats["backbone_fpn"], our_feats.backbone_fpn):
        assert max_diff(a, b) <= TOL
    for presence in (5.0, -5.0):
        set_presence(official, presence)
        set_presence(ours, presence)
        coords, labels = torch.tensor([[[500.0, 300.0]]]), torch.tensor([[1]], dtype=torch.int32)
        theirs = official._forward_sam_heads(
            theirs_feats["vision_features"], {"point_coords": coords, "point_labels": labels}, None,
            theirs_feats["backbone_fpn"][:2], True,
        )
        _assert_heads_equal(theirs, ours.predict_masks(our_feats.vision_features, our_feats.backbone_fpn[:2], coords, labels, None, True))
    curr = our_feats.vision_features.flatten(2).transpose(1, 2)
    curr_pos = our_feats.vision_pos_enc[-1].flatten(2).transpose(1, 2)
    gen = torch.Generator().manual_seed(9)
    memory = torch.randn(1, 2 * 4096 + 8, 64, generator=gen)
    memory_pos = torch.randn(1, 2 * 4096 + 8, 64, generator=gen)
    theirs = official.memory_attention(
        curr=[curr.transpose(0, 1)], curr_pos=[curr_pos.transpose(0, 1)], memory=memory.transpose(0, 1),
        memory_pos=memory_pos.transpose(0, 1), num_obj_ptr_tokens=8,
    )
    out = ours.condition_on_memory(curr, curr_pos, memory, memory_pos, 8)
    assert max_diff(theirs, out.transpose(0, 1)) <= TOL


@pytest.mark.parametrize("name", ["sam2_hiera_tiny", "sam2.1_hiera_tiny"])
@torch.no_grad()
def test_dynamic_multimask_via_stability_matches_official_postprocessing(name):
    """With the builders' post-processing, a 2-click prompt falls back to the best multimask output
    when the single mask is unstable; both paths occur across the batch and the threshold sweep."""
    official = build_official(name, SIZE, postprocessing=True)
    state = random_state_dict(official.state_dict(), seed=11)
    official.load_state_dict(state)
    ours = SAM2Model(get_config(name).replace(image_size=SIZE, dynamic_multimask_via_stability=True)).eval()
    ours.load_state_dict(state, strict=True)
    set_presence(official, 5.0)
    set_presence(ours, 5.0)
    images = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(12))
    theirs_feats, our_feats = official.forward_image(images), ours.encode_image(images)
    coords, labels = PROMPTS["clicks"]
    decoder = ours.sam_mask_decoder
    decoder.dynamic_multimask_via_stability = False
    single = ours.predict_masks(our_feats.vision_features, our_feats.backbone_fpn[:2], coords, labels, None, False)
    decoder.dynamic_multimask_via_stability = True
    for thresh in (0.0, 0.98, 1.01):
        official.sam_mask_decoder.dynamic_multimask_stability_thresh = thresh
        ours.sam_mask_decoder.stability_thresh = thresh
        theirs = official._forward_sam_heads(
            theirs_feats["vision_features"], {"point_coords": coords, "point_labels": labels}, None,
            theirs_feats["backbone_fpn"][:2], False,
        )
        out = ours.predict_masks(our_feats.vision_features, our_feats.backbone_fpn[:2], coords, labels, None, False)
        _assert_heads_equal(theirs, out)
        if thresh == 0.0:  # every mask is stable enough: the single-mask output is kept
            assert torch.equal(out.low_res_masks, single.low_res_masks)
        if thresh > 1.0:  # none is: the best multimask output replaces it
            assert not torch.equal(out.low_res_masks, single.low_res_masks)
