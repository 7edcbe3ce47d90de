"""EdgeTAM's spatial perceiver: compresses a frame's memory map into a fixed number of latent tokens.

A frame's memory ``(B, m, h, w)`` becomes ``num_latents`` global tokens (latents cross-attending to the
whole map, with its sine position added to keys and values) followed by ``num_latents_2d`` local tokens
(one latent per window of a ``g x g`` grid, ``g = sqrt(num_latents_2d)``, attending to its window only).
Memory attention then reads ``num_latents + num_latents_2d`` tokens per frame instead of ``h * w``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .kernels import Linear, attention
from .position_encoding import SinePositionEncoding


@dataclass(frozen=True)
class PerceiverConfig:
    """Shape of the perceiver (official ``spatial_perceiver`` yaml names); its width is the memory width."""

    depth: int = 2
    num_latents: int = 256
    num_latents_2d: int = 256
    heads: int = 1
    dim_head: int = 64
    ff_mult: int = 4
    use_self_attn: bool = True

    @property
    def grid(self) -> int:
        """Side of the square grid of 2D latents."""
        side = math.isqrt(self.num_latents_2d)
        if side * side != self.num_latents_2d:
            raise ValueError(f"num_latents_2d must be a square, got {self.num_latents_2d}")
        return side


def _feed_forward(dim: int, mult: int) -> nn.Sequential:
    # Indices 0, 1, 3 carry the official keys (2 is the activation).
    return nn.Sequential(nn.LayerNorm(dim), Linear(dim, dim * mult, bias=False), nn.GELU(),
                         Linear(dim * mult, dim, bias=False))


class _Heads(nn.Module):
    """Bias-free multi-head attention projections shared by the cross- and self-attention blocks."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_q = Linear(dim, inner, bias=False)
        self.to_kv = Linear(dim, 2 * inner, bias=False)
        self.to_out = Linear(inner, dim, bias=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def attend(self, queries: torch.Tensor, inputs: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        """``queries (B, Nq, dim)``, ``inputs (B, N, dim)``, ``pos (B, N, inner)`` added to keys and values."""
        k, v = self.to_kv(inputs).chunk(2, dim=-1)
        q, k, v = self._split(self.to_q(queries)), self._split(k), self._split(v)
        if pos is not None:
            pos = self._split(pos)
            k, v = k + pos, v + pos
        out = attention(q, k, v)
        b, h, n, d = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class PerceiverAttention(_Heads):
    """Latents (queries) attend to the inputs; both are layer-normed first."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__(dim, heads, dim_head)
        self.norm_x = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)

    def forward(self, latents: torch.Tensor, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        return self.attend(self.norm_latents(latents), self.norm_x(x), pos)


class SelfAttention(_Heads):
    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__(dim, heads, dim_head)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        return self.attend(x, x, None)


class PerceiverLayer(nn.Module):
    """Cross-attention and feed-forward, then (optionally) self-attention and feed-forward, all residual."""

    def __init__(self, dim: int, config: PerceiverConfig) -> None:
        super().__init__()
        self.attn = PerceiverAttention(dim, config.heads, config.dim_head)
        self.ff = _feed_forward(dim, config.ff_mult)
        if config.use_self_attn:
            self.self_attn = SelfAttention(dim, config.heads, config.dim_head)
            self.self_ff = _feed_forward(dim, config.ff_mult)
        else:
            self.self_attn = self.self_ff = None

    def forward(self, latents: torch.Tensor, x: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        latents = self.attn(latents, x, pos) + latents
        latents = self.ff(latents) + latents
        if self.self_attn is not None:
            latents = self.self_attn(latents) + latents
            latents = self.self_ff(latents) + latents
        return latents


class PerceiverResampler(nn.Module):
    """``memory (B, m, h, w)`` and its sine position ``(B, m, h, w)`` -> ``tokens (B, m, T)`` with
    ``T = num_latents + num_latents_2d``, global tokens first (channel-first, like a flattened map)."""

    def __init__(self, dim: int, config: PerceiverConfig) -> None:
        super().__init__()
        self.config = config
        self.latents = nn.Parameter(torch.randn(config.num_latents, dim))
        self.latents_2d = nn.Parameter(torch.randn(config.num_latents_2d, dim))
        self.layers = nn.ModuleList(PerceiverLayer(dim, config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim)
        self.position_encoding = SinePositionEncoding(dim)

    def forward(self, memory: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        b, c, h, w = memory.shape
        x = memory.permute(0, 2, 3, 1).flatten(1, 2)  # (B, hw, m)
        pos = pos.permute(0, 2, 3, 1).flatten(1, 2)
        global_tokens = self.latents.unsqueeze(0).expand(b, -1, -1)
        for layer in self.layers:
            global_tokens = layer(global_tokens, x, pos)
        # One latent per window: windows become the batch, each latent a single query.
        g = self.config.grid
        win = h // g
        windows = memory.permute(0, 2, 3, 1).reshape(b, g, win, g, win, c).permute(0, 1, 3, 2, 4, 5)
        windows = windows.reshape(b * g * g, win * win, c)
        local = self.latents_2d.unsqueeze(0).expand(b, -1, -1).reshape(-1, 1, c)
        for layer in self.layers:
            local = layer(local, windows)
        local = local.reshape(b, g * g, c)
        tokens = torch.cat([self.norm(global_tokens), self.norm(local)], dim=1)
        return tokens.transpose(1, 2)

    def position(self, device: torch.device) -> torch.Tensor:
        """``(T, m)`` position of each token: none for the global ones, the grid's sine encoding for the 2D ones."""
        g = self.config.grid
        grid = self.position_encoding.encode(g, g, device).flatten(1).t()
        return torch.cat([grid.new_zeros(self.config.num_latents, grid.shape[1]), grid])
