"""Random weights in the official format, without the sam2 package."""
from __future__ import annotations

import math

import torch

from vos.model.config import get_config
from vos.model.sam2 import SAM2Model


def official_state_dict(name: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    with torch.device(device):
        model = SAM2Model(get_config(name))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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
        elif name.endswith("running_var"):  # batch-norm statistics of timm trunks: a variance is positive
            new = 1 + 0.1 * torch.randn(t.shape, generator=gen).abs()
        elif name.endswith("gamma"):
            new = 0.5 * torch.randn(t.shape, generator=gen)
        elif name.endswith("weight"):
            new = 1 + 0.1 * torch.randn(t.shape, generator=gen)
        else:
            new = 0.1 * torch.randn(t.shape, generator=gen)
        out[name] = new.to(t.dtype)
    return out


def set_presence(model, bias: float) -> None:
    """Shift the object-score head so that objects read as present (+) or absent (-)."""
    model.sam_mask_decoder.pred_obj_score_head.layers[2].bias.data.fill_(bias)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.float() - b.float()).abs().max().item()


@torch.no_grad()
def check_image_encoder(official, ours: SAM2Model, levels: int) -> None:
    """vos's ``encode_image`` against an official model's ``forward_image`` on two random images: ``levels``
    maps, each and its position encoding within 1e-4."""
    size = ours.image_size
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    theirs = official.forward_image(images)
    mine = ours.encode_image(images)
    assert len(mine.backbone_fpn) == len(theirs["backbone_fpn"]) == levels
    for t, m in zip(theirs["backbone_fpn"] + theirs["vision_pos_enc"], mine.backbone_fpn + mine.vision_pos_enc):
        assert max_diff(t, m) <= 1e-4


def memory_encoder_inputs(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random inputs of the memory encoder for three objects at input size ``size``: stride-16 features
    ``(3, 256, size/16, size/16)`` and mask logits ``(3, 1, size, size)``."""
    gen = torch.Generator().manual_seed(1)
    h = size // 16
    return torch.randn(3, 256, h, h, generator=gen), 4 * torch.randn(3, 1, size, size, generator=gen)
