"""How the drop-in builders read the official arguments: config names, hydra overrides, and a warning (once)
for every argument vos accepts without acting on it."""
from __future__ import annotations

import warnings

import pytest
import torch

from vos.sam2_compat import overrides as sam2_overrides
from vos.errors import UnknownNameError
from vos.sam2_compat import build_sam2, build_sam2_video_predictor
from vos.sam2_compat.overrides import (
    IgnoredArgumentWarning,
    config_for,
    parse_overrides,
    read_build_arguments,
)

SMALL = ["++model.image_size=64"]


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(sam2_overrides, "_warned", set())


def _ignored(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, IgnoredArgumentWarning)]


@pytest.mark.parametrize("name, expected", [
    ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_tiny"),
    ("configs/sam2/sam2_hiera_s.yaml", "sam2_hiera_small"),
    ("sam2_hiera_l.yaml", "sam2_hiera_large"),
    ("sam2.1_hiera_b+", "sam2.1_hiera_base_plus"),
])
def test_config_names_and_paths(name, expected):
    assert config_for(name).name == expected


def test_an_unknown_config_is_refused_by_name():
    with pytest.raises(UnknownNameError, match="sam3_hiera_t"):
        config_for("configs/sam3/sam3_hiera_t.yaml")


def test_override_syntax():
    assert parse_overrides(["++model.image_size=512", "+model.fill_hole_area=0", "model.non_overlap_masks=true",
                            "++model.max_cond_frames_in_attn=-1", " ++model.sigmoid_scale_for_mem_enc = 2.5"]) == {
        "image_size": 512, "fill_hole_area": 0, "non_overlap_masks": True, "max_cond_frames_in_attn": -1,
        "sigmoid_scale_for_mem_enc": 2.5,
    }


def test_overrides_drive_the_model_and_the_tracker():
    args = read_build_arguments("sam2.1_hiera_t", [
        "++model.image_size=512", "++model.non_overlap_masks=true", "++model.fill_hole_area=0",
        "++model.binarize_mask_from_pts_for_mem_enc=false", "++model.add_all_frames_to_correct_as_cond=true",
        "++model.memory_temporal_stride_for_eval=2", "++model.max_cond_frames_in_attn=3",
        "++model.max_obj_ptrs_in_encoder=8", "++model.only_obj_ptrs_in_the_past_for_eval=false",
    ], apply_postprocessing=True, video=True)
    assert args.config.image_size == 512 and args.config.dynamic_multimask_via_stability
    s = args.settings
    assert (s.non_overlap, s.fill_hole_area, s.binarize_prompt_masks, s.corrections_as_prompts) == (True, 0, False, True)
    assert not s.keep_corrections  # the official predictor tracks a corrected frame again
    m = s.memory
    assert (m.temporal_stride, m.max_prompts_in_attention, m.max_pointers, m.only_past_pointers) == (2, 3, 8, False)
    assert m.max_prompted_frames is None  # the official predictor keeps every prompted frame


def test_postprocessing_defaults():
    on = read_build_arguments("sam2.1_hiera_t", [], apply_postprocessing=True, video=True)
    off = read_build_arguments("sam2.1_hiera_t", [], apply_postprocessing=False, video=True)
    assert (on.settings.fill_hole_area, on.settings.binarize_prompt_masks) == (8, True)
    assert (off.settings.fill_hole_area, off.settings.binarize_prompt_masks) == (0, False)
    assert on.config.dynamic_multimask_via_stability and not off.config.dynamic_multimask_via_stability


def test_ignored_arguments_are_named_once():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(2):  # a script building predictors in a loop hears it once
            build_sam2_video_predictor("sam2.1_hiera_t", device="cpu", mode="train", vos_optimized=True,
                                       hydra_overrides_extra=SMALL + ["++model.compile_image_encoder=true"],
                                       offload_everything=True)
    messages = _ignored(record)
    assert len(messages) == 2, messages
    assert "model.compile_image_encoder=True" in messages[0]
    assert all(word in messages[1] for word in ("mode='train'", "vos_optimized=True", "offload_everything=True"))


def test_tracker_overrides_mean_nothing_to_the_image_builder():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        build_sam2("sam2.1_hiera_t", device="cpu", hydra_overrides_extra=SMALL + ["++model.fill_hole_area=0"])
    assert any("model.fill_hole_area=0" in m for m in _ignored(record))


def test_official_arguments_raise_no_warning():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu", mode="eval",
                                   hydra_overrides_extra=SMALL + ["++model.non_overlap_masks=true"])
    assert _ignored(record) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here, so it is used")
def test_cuda_asked_for_but_not_available_is_said():
    with pytest.warns(IgnoredArgumentWarning, match="CUDA is not available"):
        predictor = build_sam2_video_predictor("sam2.1_hiera_t", hydra_overrides_extra=SMALL)
    assert predictor.device.type == "cpu"
