"""Positional encodings: 2D sine (features), random Fourier (prompts), axial RoPE, 1D sine (time)."""
from __future__ import annotations

import math

import torch
from torch import nn


class SinePositionEncoding(nn.Module):
    """DETR-style 2D sine encoding of a feature map's grid, normalised to ``[0, 2π]``.

    ``forward(x)`` with ``x`` of shape ``(B, C, H, W)`` returns ``(B, num_pos_feats, H, W)``;
    half the channels encode y, half encode x. Depends only on ``(H, W)``, so results are cached.
    """

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError(f"num_pos_feats must be even, got {num_pos_feats}")
        self.half = num_pos_feats // 2
        self.temperature = temperature
        self._cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def encode(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """``(num_pos_feats, H, W)`` float32 encoding."""
        key = (height, width, device)
        if key not in self._cache:
            eps, scale = 1e-6, 2 * math.pi
            y = torch.arange(1, height + 1, dtype=torch.float32, device=device)
            x = torch.arange(1, width + 1, dtype=torch.float32, device=device)
            y = y / (y[-1] + eps) * scale
            x = x / (x[-1] + eps) * scale
            dim_t = torch.arange(self.half, dtype=torch.float32, device=device)
            dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / self.half)
            py = _interleave_sin_cos(y[:, None] / dim_t)  # (H, half)
            px = _interleave_sin_cos(x[:, None] / dim_t)  # (W, half)
            pos = torch.cat(
                [py[:, None, :].expand(height, width, -1), px[None, :, :].expand(height, width, -1)], dim=-1
            )
            pos = pos.permute(2, 0, 1).contiguous()
            if traced():
                return pos
            self._cache[key] = pos
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.encode(x.shape[-2], x.shape[-1], x.device)
        return pos[None].expand(x.shape[0], -1, -1, -1).to(x.dtype)


def _interleave_sin_cos(angles: torch.Tensor) -> torch.Tensor:
    """``(..., D)`` angles -> ``(..., D)`` with sin of even and cos of odd columns, interleaved pairwise."""
    return torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)


class RandomFourierPositionEncoding(nn.Module):
    """Random Fourier features of normalised ``(x, y)`` coordinates, as SAM's prompt encoder uses.

    The Gaussian matrix is a persistent buffer (it is part of official checkpoints).
    """

    def __init__(self, num_pos_feats: int = 64, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        """``(..., 2)`` coordinates in ``[0, 1]`` -> ``(..., 2 * num_pos_feats)``."""
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([coords.sin(), coords.cos()], dim=-1)

    def grid(self, height: int, width: int) -> torch.Tensor:
        """Encoding of pixel centres of an ``H x W`` grid: ``(2 * num_pos_feats, H, W)``."""
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) / height
        xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) / width
        xy = torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)], dim=-1)
        return self._encode(xy).permute(2, 0, 1)

    def points(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """``(B, N, 2)`` pixel ``(x, y)`` in an ``(H, W)`` image -> ``(B, N, 2 * num_pos_feats)``."""
        height, width = image_size
        scale = torch.tensor([width, height], dtype=torch.float32, device=coords.device)
        return self._encode(coords.float() / scale)


def axial_rope_angles(head_dim: int, width: int, height: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotation angles of 2D axial RoPE for a row-major ``height x width`` grid: ``(H*W, head_dim // 2)``.

    The first quarter of the head's channel pairs rotate with x, the second with y.
    """
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    t = torch.arange(width * height, dtype=torch.float32)
    t_x = t % width
    t_y = torch.div(t, width, rounding_mode="floor")
    return torch.cat([torch.outer(t_x, freqs), torch.outer(t_y, freqs)], dim=-1)


def traced() -> bool:
    """Whether the code runs in a graph being traced (``torch.export`` for ONNX, or ``torch.compile``), where
    writes into views of other tensors are better written as plain products and concatenations."""
    return torch.compiler.is_exporting() or torch.compiler.is_compiling()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Rotate consecutive channel pairs of ``x (..., N, D)`` by angles given as ``cos, sin (N, D/2)``, into
    ``out`` (same shape, may be a view into a larger tensor) when given.

    Plain real products and sums on purpose: PyTorch's vectorised complex product rounds some elements
    differently depending on memory alignment, which made identical runs differ in the last bit (and complex
    numbers do not export to ONNX)."""
    if x.dtype != torch.float32 or (torch.is_grad_enabled() and x.requires_grad) or traced():
        # Other dtypes rotate in float32 and round once; autograd cannot follow writes into ``out=``, and a
        # traced graph would turn them into scatters (ONNX has no writes into views; torch.compile's
        # functionalisation fails on ``out=`` views of views).
        pairs = x.float().unflatten(-1, (-1, 2))
        real, imag = pairs[..., 0], pairs[..., 1]
        rotated = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1).flatten(-2).to(x.dtype)
        return rotated if out is None else out.copy_(rotated)
    # float32: each half written in place of a stacked copy (memory keys of 8 objects are 60 MB a layer);
    # the same products and sums in the same order, so the same bits.
    out = torch.empty_like(x) if out is None else out
    pairs, rotated = x.unflatten(-1, (-1, 2)), out.unflatten(-1, (-1, 2))
    real, imag = pairs[..., 0], pairs[..., 1]
    torch.mul(real, cos, out=rotated[..., 0]).sub_(imag * sin)
    torch.mul(real, sin, out=rotated[..., 1]).add_(imag * cos)
    return out


def sine_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """1D sine encoding of (possibly fractional) positions ``(N,)`` -> ``(N, dim)``: sines, then cosines."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=positions.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)
    angles = positions.unsqueeze(-1) / dim_t
    return torch.cat([angles.sin(), angles.cos()], dim=-1)
