"""Hiera image trunk as SAM 2 uses it: windowed attention, a few global blocks, q-pooling between stages.

Tokens stay in a spatial ``(B, H, W, C)`` layout throughout, so windows are plain reshapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP
from .kernels import Linear, attention


@dataclass(frozen=True)
class HieraConfig:
    """Shape of a Hiera trunk. Fields mirror the official yaml names."""

    embed_dim: int = 96
    num_heads: int = 1
    stages: tuple[int, ...] = (2, 3, 16, 3)
    global_att_blocks: tuple[int, ...] = (12, 16, 20)
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (14, 14)
    q_pool: int = 3
    q_stride: tuple[int, int] = (2, 2)
    dim_mul: float = 2.0
    head_mul: float = 2.0
    drop_path_rate: float = 0.0

    @property
    def stage_ends(self) -> list[int]:
        return [sum(self.stages[: i + 1]) - 1 for i in range(len(self.stages))]

    @property
    def q_pool_blocks(self) -> list[int]:
        return [end + 1 for end in self.stage_ends[:-1]][: self.q_pool]

    @property
    def summary(self) -> str:
        return f"Hiera embed_dim={self.embed_dim} heads={self.num_heads} stages={self.stages}"

    @property
    def total_stride(self) -> int:
        """Stride of the lowest-resolution output: the patch embedding's 4, halved by each q-pool."""
        return 4 * 2**self.q_pool

    @property
    def channels(self) -> list[int]:
        """Channels of each stage's output, highest resolution first."""
        return [int(self.embed_dim * self.dim_mul**i) for i in range(len(self.stages))]


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """``(B, H, W, C)`` -> ``(B * nW, window, window, C)``, padding H and W up to multiples of ``window``."""
    b, h, w, c = x.shape
    pad_h, pad_w = (window - h % window) % window, (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window, window, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, window, window, C)`` -> ``(B, H, W, C)``."""
    hp, wp = padded_hw
    h, w = hw
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.view(b, hp // window, wp // window, window, window, -1).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(b, hp, wp, -1)
    return x[:, :h, :w, :].contiguous() if (hp > h or wp > w) else x


def _pool(x: torch.Tensor, pool: nn.Module | None) -> torch.Tensor:
    """Apply a 2D pooling module to a channels-last ``(B, H, W, C)`` tensor."""
    if pool is None:
        return x
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class MultiScaleAttention(nn.Module):
    """Self-attention whose queries may be max-pooled, shrinking the output grid.

    ``(B, H, W, dim)`` -> ``(B, H', W', dim_out)`` with ``H' = H / q_stride`` when pooling.
    """

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None = None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = Linear(dim, dim_out * 3)
        self.proj = Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = qkv.unbind(2)
        if self.q_pool is not None:
            q = _pool(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class DropPath(nn.Module):
    """Stochastic depth: drops a residual branch per sample during training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block with optional window attention, q-pooling and channel change."""

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        *,
        window_size: int,
        q_stride: tuple[int, int] | None = None,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pool = nn.MaxPool2d(kernel_size=q_stride, stride=q_stride) if q_stride else None
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio), dim_out, 2, activation=nn.GELU)
        if dim != dim_out:
            self.proj = Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, H, W, dim)`` -> ``(B, H', W', dim_out)``."""
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            # The skip path is projected from the normalised input, then pooled like the queries.
            shortcut = _pool(self.proj(x), self.pool)
        window = self.window_size
        if window > 0:
            hw = x.shape[1:3]
            x, padded = window_partition(x, window)
        x = self.attn(x)
        if window > 0:
            if self.q_stride:
                window = window // self.q_stride[0]
                hw = shortcut.shape[1:3]
                padded = tuple(s + (window - s % window) % window for s in hw)
            x = window_unpartition(x, window, padded, hw)
        x = shortcut + self.drop_path(x)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution to tokens: ``(B, 3, H, W)`` -> ``(B, H/4, W/4, C)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Hiera(nn.Module):
    """The hierarchical trunk. ``forward`` returns one ``(B, C_i, H_i, W_i)`` map per stage, strides 4..32."""

    def __init__(self, config: HieraConfig) -> None:
        super().__init__()
        self.config = config
        dim, heads = config.embed_dim, config.num_heads
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, dim, *config.window_pos_embed_bkg_spatial_size))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, dim, config.window_spec[0], config.window_spec[0]))
        depth = sum(config.stages)
        drop_rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        stage_ends, q_pool_blocks = config.stage_ends, config.q_pool_blocks
        self.stage_ends = stage_ends
        self.blocks = nn.ModuleList()
        stage = 0
        for i in range(depth):
            dim_out = dim
            # The window is read before the stage advances, so a stage's first block keeps the
            # previous stage's window: it attends at the old resolution while pooling its queries.
            window = 0 if i in config.global_att_blocks else config.window_spec[stage]
            if i - 1 in stage_ends:
                dim_out = int(dim * config.dim_mul)
                heads = int(heads * config.head_mul)
                stage += 1
            self.blocks.append(
                MultiScaleBlock(
                    dim,
                    dim_out,
                    heads,
                    window_size=window,
                    q_stride=config.q_stride if i in q_pool_blocks else None,
                    drop_path=drop_rates[i],
                )
            )
            dim = dim_out
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_window, std=0.02)
        self._pos_cache: tuple[tuple, torch.Tensor] | None = None

    def position_embedding(self, height: int, width: int) -> torch.Tensor:
        """Background embedding resized to the token grid plus the window embedding tiled over it,
        ``(1, H, W, C)``. Without autograd it is kept until the weights or the grid change: the bicubic resize
        costs 30-40 ms a frame at 1024 px."""
        if torch.is_grad_enabled() or torch.compiler.is_compiling():  # a compiled graph keeps no cache
            return self._position_embedding(height, width)
        key = (height, width, self.pos_embed._version, self.pos_embed_window._version, self.pos_embed.device,
               self.pos_embed.dtype, self.pos_embed.data_ptr())
        if self._pos_cache is None or self._pos_cache[0] != key:
            self._pos_cache = (key, self._position_embedding(height, width))
        return self._pos_cache[1]

    def _position_embedding(self, height: int, width: int) -> torch.Tensor:
        pos = F.interpolate(self.pos_embed, size=(height, width), mode="bicubic")
        win = self.pos_embed_window
        reps = [a // b for a, b in zip(pos.shape, win.shape)]
        return (pos + win.tile(reps)).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self.position_embedding(*x.shape[1:3])
        if self.blocks[0].attn.qkv.runs_packed(x):
            # The patch convolution's channels-first output read as (B, H, W, C) makes every operation of the
            # first stage stride across channels, bfloat16 casts most of all (9% of the image encoder at
            # 1024 px); contiguous tokens change the last bits, so only where rounding may differ.
            x = x.contiguous()
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outputs.append(x.permute(0, 3, 1, 2))
        return outputs
