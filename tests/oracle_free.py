"""Official-format state dicts with random weights, built from our own model (no sam2 package needed)."""
from __future__ import annotations

import torch

from vos.config import get_config
from vos.model import SAM2Model


def official_state_dict(name: str, device: str = "cpu") -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    with torch.device(device):
        model = SAM2Model(get_config(name))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
