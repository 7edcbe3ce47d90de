"""Test helpers around the official ``sam2`` package, used only as a numerical oracle."""
from __future__ import annotations

import pytest
from oracle_free import max_diff, random_state_dict, set_presence  # noqa: F401  (re-exported)

sam2_build = pytest.importorskip("sam2.build_sam", reason="the official sam2 package (test extra) is not installed")

OFFICIAL_YAML = {
    "sam2_hiera_tiny": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_small": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_base_plus": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_large": "configs/sam2/sam2_hiera_l.yaml",
    "sam2.1_hiera_tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


def build_official(name: str, image_size: int, postprocessing: bool = False, video: bool = False):
    """An official model (or video predictor) on CPU in eval mode, with the builder's defaults."""
    overrides = [f"++model.image_size={image_size}"]
    if video:
        return sam2_build.build_sam2_video_predictor(
            OFFICIAL_YAML[name], None, device="cpu", hydra_overrides_extra=overrides,
            apply_postprocessing=postprocessing,
        )
    return sam2_build.build_sam2(
        OFFICIAL_YAML[name], None, device="cpu", mode="eval", hydra_overrides_extra=overrides,
        apply_postprocessing=postprocessing,
    )
