"""Image trunks from timm (EdgeTAM's RepViT), under the official ``image_encoder.trunk.body.*`` keys."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class TimmTrunkConfig:
    """A timm model used as a 4-level feature pyramid (strides 4, 8, 16, 32).

    ``model_name`` is timm's architecture name; ``channels`` the channels of the four levels, highest
    resolution first (what the neck's laterals are built for; checked against timm when the trunk is built).
    """

    model_name: str
    channels: tuple[int, int, int, int]

    @property
    def summary(self) -> str:
        return f"timm {self.model_name} channels={self.channels}"

    @property
    def total_stride(self) -> int:
        return 32


class TimmTrunk(nn.Module):
    """``(B, 3, S, S)`` -> four maps ``(B, C_i, S / 2**(i+2), S / 2**(i+2))``, highest resolution first.

    Built without pretrained weights: checkpoints hold every trunk weight (batch-norm statistics included).
    """

    def __init__(self, config: TimmTrunkConfig) -> None:
        super().__init__()
        # Imported here, not with the module: timm takes seconds to import and only these trunks (EdgeTAM's)
        # need it, while every model config imports this module for TimmTrunkConfig.
        import timm

        self.body = timm.create_model(config.model_name, pretrained=False, features_only=True, out_indices=(0, 1, 2, 3))
        found = tuple(self.body.feature_info.channels())
        if found != tuple(config.channels):
            raise ValueError(f"timm {config.model_name!r} gives channels {found}, the config says {config.channels}")
        # The FPN neck fuses levels by 2x nearest upsampling: strides must be exactly 4, 8, 16, 32.
        if tuple(self.body.feature_info.reduction()) != (4, 8, 16, config.total_stride):
            raise ValueError(f"timm {config.model_name!r} has strides {self.body.feature_info.reduction()}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)
