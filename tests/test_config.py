"""Configs are plain data: validation, serialisation, and custom sizes that run."""
from __future__ import annotations

import pytest
import torch
from tiny import tiny_config

import vos
from vos.model.config import ModelConfig, get_config


def test_config_dict_round_trip_for_official_and_custom():
    for config in (get_config("sam2.1_hiera_b+"), tiny_config()):
        assert ModelConfig.from_dict(config.to_dict()) == config


def test_2_0_and_2_1_differ_only_in_the_version_flags():
    a, b = get_config("sam2_hiera_large").to_dict(), get_config("sam2.1_hiera_large").to_dict()
    assert {k for k in a if a[k] != b[k]} == {
        "name", "no_obj_embed_spatial", "add_tpos_enc_to_obj_ptrs", "proj_tpos_enc_in_obj_ptrs",
        "use_signed_tpos_enc_to_obj_ptrs",
    }


def test_image_size_must_be_divisible_by_total_stride():
    with pytest.raises(ValueError, match="not divisible by the total stride 32"):
        get_config("sam2.1_hiera_tiny").replace(image_size=1000)


def test_unknown_config_name_lists_known_ones():
    with pytest.raises(KeyError, match="sam2.1_hiera_tiny"):
        get_config("sam2.1_hiera_huge")


@pytest.mark.parametrize("name,implemented,other", [
    ("use_mask_input_as_output_without_sam", True, False),
    ("max_obj_ptrs_in_encoder", 16, 8),
    ("only_obj_ptrs_in_the_past_for_eval", True, False),
])
def test_official_settings_vos_does_not_vary_are_read_never_ignored(name, implemented, other, tmp_path):
    """A stored config may carry the official value (checkpoints written when these were fields); another
    value is refused naming the field, from a dict and from a checkpoint file."""
    config = tiny_config()
    assert name not in config.to_dict()
    assert ModelConfig.from_dict(config.to_dict() | {name: implemented}) == config
    with pytest.raises(ValueError, match=f"{name} = {other!r} is not implemented by vos"):
        ModelConfig.from_dict(config.to_dict() | {name: other})
    path = vos.save_model(vos.build_model(config), tmp_path / "m.pt")
    data = torch.load(path, weights_only=True)
    data["config"][name] = other
    torch.save(data, path)
    with pytest.raises(vos.CheckpointError, match=f"m.pt has an invalid vos config: model config field {name}"):
        vos.load_model(path)


def test_the_live_tracker_refuses_to_keep_history():
    with pytest.raises(ValueError, match="keep_history=True is for the offline predictor"):
        vos.LiveTracker(vos.build_model(tiny_config()), vos.TrackerSettings(keep_history=True))


def test_unknown_fields_in_stored_config_are_refused():
    data = tiny_config().to_dict() | {"bogus": 1}
    with pytest.raises(ValueError, match="bogus"):
        ModelConfig.from_dict(data)
    # inside a nested field, the message names the field and its value (an empty key once read "trunk.")
    with pytest.raises(ValueError, match=r"model config field trunk = \{'': None\} has unknown fields \[''\]"):
        ModelConfig.from_dict(tiny_config().to_dict() | {"trunk": {"": None}})


@pytest.mark.parametrize("size", [64, 96, 128])
@torch.no_grad()
def test_custom_small_model_runs_every_component(size):
    model = vos.build_model(tiny_config(image_size=size))
    feats = model.encode_image(torch.randn(2, 3, size, size))
    s = size // 16
    assert feats.vision_features.shape == (2, 32, s, s)
    assert feats.backbone_fpn[0].shape == (2, 4, 4 * s, 4 * s)
    coords = torch.tensor([[[10.0, 12.0]], [[30.0, 5.0]]])
    out = model.predict_masks(feats.vision_features, feats.backbone_fpn[:2], coords, torch.ones(2, 1, dtype=torch.int32),
                              multimask_output=True)
    assert out.low_res_multimasks.shape == (2, 3, 4 * s, 4 * s)
    assert out.high_res_masks.shape == (2, 1, size, size)
    assert out.obj_ptr.shape == (2, 32)
    mem, pos = model.encode_memory(feats.vision_features, out.high_res_masks, out.object_score)
    assert mem.shape == pos.shape == (2, 8, s, s)
    tokens, tpos = model.object_pointer_tokens(out.obj_ptr[:, None], torch.tensor([1]), 16)
    memory = torch.cat([mem.flatten(2).transpose(1, 2), tokens], 1)
    memory_pos = torch.cat([pos.flatten(2).transpose(1, 2), tpos], 1)
    curr = feats.vision_features.flatten(2).transpose(1, 2)
    cond = model.condition_on_memory(curr, feats.vision_pos_enc[-1].flatten(2).transpose(1, 2), memory, memory_pos,
                                     tokens.shape[1])
    assert cond.shape == curr.shape and torch.isfinite(cond).all()
