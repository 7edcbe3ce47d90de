"""EfficientTAM's image encoder: a plain ViT (timm's SAM-ViT blocks) and a ViTDet-style one-level neck,
under the official ``image_encoder.trunk.*`` / ``image_encoder.neck.*`` keys.

The official trunk is detectron2's ViTDet: windowed blocks with a few global ones, an absolute position
embedding learned at 224 px (class-token slot included) and resized bicubically to the token grid, and only
the last block's map as output. timm's ``vision_transformer_sam.Block`` computes exactly such a block; its
MLP is replaced by vos's :class:`~vos.model.common.MLP`, whose ``layers.0`` / ``layers.1`` are the official keys
(timm would name them ``fc1`` / ``fc2``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP, LayerNorm2d
from .position_encoding import SinePositionEncoding


@dataclass(frozen=True)
class ViTConfig:
    """Shape of a ViTDet trunk; fields mirror the official yaml names (``sam2.modeling.backbones.vitdet.ViT``)."""

    embed_dim: int
    depth: int
    num_heads: int
    window_size: int = 14
    window_block_indexes: tuple[int, ...] = (0, 1, 3, 4, 6, 7, 9, 10)
    patch_size: int = 16
    mlp_ratio: float = 4.0
    # The absolute position embedding was learned on a (pretrain_img_size / patch_size)^2 grid plus a class
    # token; it is stored at that size and resized to every input.
    pretrain_img_size: int = 224

    @property
    def summary(self) -> str:
        return f"ViT embed_dim={self.embed_dim} depth={self.depth} heads={self.num_heads}"

    @property
    def total_stride(self) -> int:
        return self.patch_size

    @property
    def channels(self) -> tuple[int]:
        """Channels of the one output map (the last block's)."""
        return (self.embed_dim,)


def _mlp(in_features: int, hidden_features: int, act_layer: type[nn.Module], drop: float = 0.0, **_: object) -> MLP:
    """timm's ``mlp_layer`` signature, building vos's MLP (official key names, fused GELU)."""
    return MLP(in_features, hidden_features, in_features, 2, activation=act_layer)


class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches to tokens: ``(B, 3, H, W)`` -> ``(B, H/p, W/p, C)``."""

    def __init__(self, patch_size: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class ViTTrunk(nn.Module):
    """``(B, 3, S, S)`` -> ``[(B, embed_dim, S/p, S/p)]``: one map, the last block's."""

    def __init__(self, config: ViTConfig) -> None:
        super().__init__()
        # Imported here: timm takes seconds to import, and only this trunk (EfficientTAM's) needs it.
        from timm.models.vision_transformer_sam import Block

        self.config = config
        dim = config.embed_dim
        self.patch_embed = PatchEmbed(config.patch_size, dim)
        grid = config.pretrain_img_size // config.patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, dim))
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList(
            Block(dim, config.num_heads, mlp_ratio=config.mlp_ratio, qkv_bias=True, norm_layer=norm,
                  mlp_layer=_mlp, window_size=config.window_size if i in config.window_block_indexes else 0)
            for i in range(config.depth)
        )
        self._pos_cache: tuple[tuple, torch.Tensor] | None = None

    def position_embedding(self, height: int, width: int) -> torch.Tensor:
        """The stored embedding without its class-token slot, resized to the token grid: ``(1, H, W, C)``.
        Kept without autograd until the weights or the grid change (a bicubic resize per frame otherwise)."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():  # a compiled graph keeps no cache
            return self._position_embedding(height, width)
        key = (height, width, self.pos_embed._version, self.pos_embed.device, self.pos_embed.dtype,
               self.pos_embed.data_ptr())
        if self._pos_cache is None or self._pos_cache[0] != key:
            self._pos_cache = (key, self._position_embedding(height, width))
        return self._pos_cache[1]

    def _position_embedding(self, height: int, width: int) -> torch.Tensor:
        pos = self.pos_embed[:, 1:]
        side = self.config.pretrain_img_size // self.config.patch_size
        pos = pos.reshape(1, side, side, -1)
        if (side, side) == (height, width):
            return pos
        pos = F.interpolate(pos.permute(0, 3, 1, 2), size=(height, width), mode="bicubic", align_corners=False)
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self.position_embedding(*x.shape[1:3])
        for block in self.blocks:
            x = block(x)
        return [x.permute(0, 3, 1, 2)]


class _NeckLevel(nn.Module):
    """1x1 conv, LayerNorm, 3x3 conv, LayerNorm (no conv biases: each conv is followed by a norm)."""

    def __init__(self, in_dim: int, d_model: int) -> None:
        super().__init__()
        self.conv_1x1 = nn.Conv2d(in_dim, d_model, kernel_size=1, bias=False)
        self.norm_0 = LayerNorm2d(d_model)
        self.conv_3x3 = nn.Conv2d(d_model, d_model, kernel_size=3, padding=1, bias=False)
        self.norm_1 = LayerNorm2d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm_1(self.conv_3x3(self.norm_0(self.conv_1x1(x))))


class ViTDetNeck(nn.Module):
    """``[(B, embed_dim, h, w)]`` -> ``[(B, d_model, h, w)]`` and its sine position encoding: one level, so
    the mask decoder runs without high-resolution features."""

    def __init__(self, d_model: int, in_dim: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.convs = nn.ModuleList([_NeckLevel(in_dim, d_model)])
        self.position_encoding = SinePositionEncoding(d_model)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        (x,) = xs
        out = self.convs[0](x)
        return [out], [self.position_encoding(out)]
