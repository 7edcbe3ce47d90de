"""Our trunk initialised from hiera-transformer's MAE Hiera reproduces its stage outputs."""
from __future__ import annotations

import pytest
import torch
from oracle import random_state_dict

from vos.model.hiera import Hiera, HieraConfig
from vos.model.kernels import use_packed_kernels
from vos.weights.mae import convert_hiera_state_dict

hiera = pytest.importorskip("hiera", reason="hiera-transformer is not installed")


@pytest.mark.parametrize("factory,config,relative", [
    ("hiera_tiny_224", HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                                   window_pos_embed_bkg_spatial_size=(56, 56)), False),
    ("hiera_base_plus_224", HieraConfig(embed_dim=112, num_heads=2, window_pos_embed_bkg_spatial_size=(56, 56)), True),
])
@torch.no_grad()
def test_converted_trunk_matches_hiera_intermediates_at_224(factory, config, relative):
    torch.manual_seed(0)
    reference = getattr(hiera, factory)(pretrained=False).eval()
    reference.load_state_dict(random_state_dict(reference.state_dict(), seed=3))
    trunk = use_packed_kernels(Hiera(config).eval(), False)  # the same matmul kernels as the reference
    trunk.load_state_dict(convert_hiera_state_dict(reference.state_dict(), config), strict=True)
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    _, intermediates = reference(images, return_intermediates=True)
    ours = trunk(images)
    assert len(ours) == len(intermediates) == 4
    for a, b in zip(intermediates, ours):
        a = a.permute(0, 3, 1, 2)
        # Tiny: 1e-5 absolute. The 24-block b+ with deliberately large random weights reaches |x| ~ 10,
        # where float32 rounding accumulates past that, so its bound scales with |x|.
        bound = 1e-5 * max(1.0, a.abs().max().item() / 4) if relative else 1e-5
        assert (a - b).abs().max().item() <= bound


def test_position_embedding_is_resized_to_the_target_background_size():
    reference = hiera.hiera_tiny_224(pretrained=False)
    config = HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                         window_pos_embed_bkg_spatial_size=(7, 7))
    state = convert_hiera_state_dict(reference.state_dict(), config)
    assert state["pos_embed"].shape == (1, 96, 7, 7)
    Hiera(config).load_state_dict(state, strict=True)


def test_video_hiera_is_refused():
    with pytest.raises(KeyError, match="pos_embed"):
        convert_hiera_state_dict({"pos_embed_spatial": torch.zeros(1)}, HieraConfig())
