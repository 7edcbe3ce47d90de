"""Test helpers around the official ``sam2`` package, used only as a numerical oracle."""
from __future__ import annotations

import math

import pytest
import torch

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


def random_state_dict(state_dict: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of unit-preserving scale, so that every layer visibly shapes the output."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in state_dict.items():
        if t.ndim >= 2 and not name.endswith(("pos_embed", "pos_embed_window")):
            fan_in = math.prod(t.shape[1:])
            if name.endswith("positional_encoding_gaussian_matrix"):
                fan_in = 1
            new = torch.randn(t.shape, generator=gen) / math.sqrt(fan_in)
        elif t.ndim >= 2:
            new = 0.5 * torch.randn(t.shape, generator=gen)
        elif name.endswith("gamma"):
            new = 0.5 * torch.randn(t.shape, generator=gen)
        elif name.endswith("weight"):
            new = 1 + 0.1 * torch.randn(t.shape, generator=gen)
        else:
            new = 0.1 * torch.randn(t.shape, generator=gen)
        out[name] = new.to(t.dtype)
    return out


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


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()
