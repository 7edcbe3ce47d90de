"""Image encoder: a trunk (Hiera, or timm's RepViT for EdgeTAM) plus an FPN neck that keeps the three
highest-resolution levels (EfficientTAM's ViT and its one-level neck are in :mod:`vos.model.vit`)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .position_encoding import SinePositionEncoding


@dataclass
class ImageFeatures:
    """Output of :class:`ImageEncoder`, highest resolution first.

    ``backbone_fpn[i]`` is ``(B, d_model, H_i, W_i)`` for strides 4, 8, 16 (only 16 for EfficientTAM's ViT)
    and ``vision_pos_enc[i]`` its sine position encoding of the same shape.
    """

    backbone_fpn: list[torch.Tensor]
    vision_pos_enc: list[torch.Tensor]

    @property
    def vision_features(self) -> torch.Tensor:
        return self.backbone_fpn[-1]

    @property
    def high_res_features(self) -> list[torch.Tensor]:
        """The levels above stride 16, highest resolution first (none for a one-level encoder)."""
        return self.backbone_fpn[:-1]


class _Lateral(nn.Module):
    """A 1x1 lateral convolution, wrapped so its parameters live under ``convs.{i}.conv``."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FpnNeck(nn.Module):
    """Feature pyramid: 1x1 laterals to ``d_model`` channels, nearest top-down fusion on chosen levels.

    ``backbone_channel_list`` runs from the lowest resolution (most channels) to the highest, so
    ``convs.0`` maps the stride-32 map; ``top_down_levels`` index levels from the highest resolution.
    """

    def __init__(self, d_model: int, backbone_channel_list: list[int], top_down_levels: tuple[int, ...] = (2, 3)) -> None:
        super().__init__()
        self.d_model = d_model
        self.convs = nn.ModuleList(_Lateral(c, d_model) for c in backbone_channel_list)
        self.top_down_levels = top_down_levels
        self.position_encoding = SinePositionEncoding(d_model)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = len(self.convs) - 1
        out: list[torch.Tensor] = [None] * (n + 1)  # type: ignore[list-item]
        prev = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](xs[i])
            if i in self.top_down_levels and prev is not None:
                top_down = F.interpolate(prev.to(torch.float32), scale_factor=2.0, mode="nearest")
                prev = lateral + top_down
            else:
                prev = lateral
            out[i] = prev
        pos = [self.position_encoding(x) for x in out]
        return out, pos


class ImageEncoder(nn.Module):
    """``(B, 3, S, S)`` normalised images -> :class:`ImageFeatures` at strides 4, 8 and 16."""

    def __init__(self, trunk: nn.Module, neck: FpnNeck, scalp: int = 1) -> None:
        super().__init__()
        self.trunk = trunk
        self.neck = neck
        self.scalp = scalp

    def forward(self, images: torch.Tensor) -> ImageFeatures:
        features, pos = self.neck(self.trunk(images))
        if self.scalp > 0:
            features, pos = features[: -self.scalp], pos[: -self.scalp]
        return ImageFeatures(backbone_fpn=features, vision_pos_enc=pos)
