"""Memory attention: conditions the current frame's features on the memory bank.

Sequences are batch-first here: the current frame is ``(B, N, C)`` and the memory ``(B, M, mem_dim)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import Linear, attention_then_values, values_after_attention
from .position_encoding import apply_rope, axial_rope_angles, traced
from .transformer import Attention


@dataclass(frozen=True)
class PooledMemoryConfig:
    """EfficientTAM's efficient cross-attention (official ``EfficientRoPEAttention1`` / ``2``).

    Once the memory holds more than one frame, each frame's rotated keys and its values are average-pooled
    over ``kernel x kernel`` windows of its grid (object-pointer tokens stay as they are), so attention
    reads ``1 / kernel**2`` of the spatial tokens. A pooled key stands for ``kernel**2`` keys: ``log(kernel**2)``
    is added to its attention scores (``count_bias_on="scores"``, variant 1), or, as variant 2's code does, to
    every channel of the pooled key itself (``"keys"``, which shifts its scores by ``log(kernel**2)`` times
    the sum of the query's channels).
    """

    kernel: int = 2
    count_bias_on: Literal["scores", "keys"] = "scores"

    def __post_init__(self) -> None:
        if self.count_bias_on not in ("scores", "keys"):
            raise ValueError(f"count_bias_on must be 'scores' or 'keys', got {self.count_bias_on!r}")
        if self.kernel < 2:
            raise ValueError(f"a pooling kernel of {self.kernel} pools nothing")


class RoPEAttention(Attention):
    """Attention with 2D axial rotary position encoding on queries and keys.

    For cross-attention over several memory frames (``rope_k_repeat``) every frame of ``N`` keys gets
    the same rotation as the ``N`` queries; the last ``num_k_exclude_rope`` keys (object pointers) get none.
    With ``k_grid`` (EdgeTAM's compressed memories) a frame is instead ``k_unrotated`` keys left as they are,
    then ``k_grid ** 2`` keys rotated by their own square grid, whatever the queries' grid. With ``pool``
    (EfficientTAM) memories of several frames are pooled after rotation, see :class:`PooledMemoryConfig`.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
        *,
        rope_theta: float = 10000.0,
        rope_k_repeat: bool = False,
        feat_sizes: tuple[int, int] = (64, 64),
        k_grid: int | None = None,
        k_unrotated: int = 0,
        pool: PooledMemoryConfig | None = None,
    ) -> None:
        super().__init__(embedding_dim, num_heads, downsample_rate, dropout, kv_in_dim)
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat
        self.feat_sizes = feat_sizes
        self.k_grid = k_grid
        self.k_unrotated = k_unrotated
        self.pool = pool
        self._angles: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def _rotation(self, num_tokens: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``cos, sin (num_tokens, head_dim / 2)`` for a square grid of ``num_tokens`` tokens."""
        key = (num_tokens, device)
        if key not in self._angles:
            side = math.isqrt(num_tokens)
            if side * side != num_tokens:
                raise ValueError(f"RoPE needs a square token grid, got {num_tokens} tokens")
            angles = axial_rope_angles(self.internal_dim // self.num_heads, side, side, self.rope_theta).to(device)
            # polar() rounds cos/sin exactly as the official complex-valued RoPE does (plain cos()
            # differs by one ulp), which keeps long videos bit-identical instead of drifting.
            rotation = torch.polar(torch.ones_like(angles), angles)
            cos_sin = (rotation.real.contiguous(), rotation.imag.contiguous())
            if traced():  # a traced graph computes them: storing them would invalidate the graph
                return cos_sin
            self._angles[key] = cos_sin
        return self._angles[key]

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        q = self._split_heads(self.q_proj(q))
        k = self._split_heads(self.k_proj(k))
        late = self.pool is None and not self.training and values_after_attention(self.v_proj, self.num_heads, v)
        if not late:
            v = self._split_heads(self.v_proj(v))
        n_q = q.shape[-2]
        cos, sin = self._rotation(n_q, q.device)
        q = apply_rope(q, cos, sin)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if n_rope > 0 and self.k_grid is not None:
            k = self._rotate_grid_keys(k, n_rope)
        elif n_rope > 0:
            if n_rope % n_q or (n_rope != n_q and not self.rope_k_repeat):
                raise ValueError(f"{n_rope} rotary keys do not tile {n_q} queries")
            # Each memory frame's keys rotate as if it were the current frame: broadcast over frames
            # rather than tiling the rotation, whose size would grow with the memory. Rotated keys and
            # the unrotated pointer keys go straight into one tensor (no concatenation copy), but in a
            # traced graph, where writes into views become scatters.
            frames = (n_rope // n_q, n_q)
            if traced():
                rotated = apply_rope(k[:, :, :n_rope].unflatten(2, frames), cos, sin).flatten(2, 3)
                k = torch.cat([rotated, k[:, :, n_rope:]], dim=2)
            else:
                keys = k.new_empty(k.shape)
                apply_rope(k[:, :, :n_rope].unflatten(2, frames), cos, sin, out=keys[:, :, :n_rope].unflatten(2, frames))
                keys[:, :, n_rope:] = k[:, :, n_rope:]
                k = keys
        # As officially, a single memory frame (a prompted first frame) is attended in full.
        if self.pool is not None and n_rope > n_q:
            return self._attend_pooled(q, k, v, n_rope)
        if late:
            return self._merge_heads(attention_then_values(q, k, v, self.v_proj))
        return self._attend(q, k, v)

    def _attend_pooled(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_rope: int) -> torch.Tensor:
        """``q (B, heads, N, d)``; ``k, v (B, heads, M, d)`` whose first ``n_rope`` tokens are whole frames of
        ``N`` tokens on the queries' square grid, pooled here; the rest (pointers) are kept."""
        b, heads, n_q, d = q.shape
        side, kernel = math.isqrt(n_q), self.pool.kernel
        if side % kernel:
            raise ValueError(f"a {side}x{side} memory grid does not pool by {kernel}x{kernel}")

        def pooled(x: torch.Tensor) -> torch.Tensor:
            # Frames and channels become pooling channels over each frame's grid, in the official order.
            grids = x[:, :, :n_rope].reshape(b, -1, n_q, d).transpose(-2, -1).reshape(b, -1, side, side)
            grids = F.avg_pool2d(grids, kernel, stride=kernel)
            return grids.reshape(b, -1, d, n_q // kernel**2).transpose(-2, -1).reshape(b, heads, -1, d)

        k_pooled, v_pooled = pooled(k), pooled(v)
        log_count = 2 * math.log(kernel)
        if self.pool.count_bias_on == "keys":
            k_pooled = k_pooled + log_count
        keys = torch.cat([k_pooled, k[:, :, n_rope:]], dim=2)
        values = torch.cat([v_pooled, v[:, :, n_rope:]], dim=2)
        if self.pool.count_bias_on == "keys":
            return self._attend(q, keys, values)
        bias = q.new_zeros(1, keys.shape[2])  # (1, M): the same for every query
        bias[:, : k_pooled.shape[2]] = log_count
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=bias,
                                             dropout_p=self.dropout_p if self.training else 0.0)
        return self._merge_heads(out)

    def _rotate_grid_keys(self, k: torch.Tensor, n_rope: int) -> torch.Tensor:
        """``k (B, heads, M, d)`` whose first ``n_rope`` keys are whole frames of ``k_unrotated + k_grid**2``."""
        per_frame = self.k_unrotated + self.k_grid**2
        if n_rope % per_frame:
            raise ValueError(f"{n_rope} memory keys are not whole frames of {per_frame} tokens")
        cos, sin = self._rotation(self.k_grid**2, k.device)
        keys = k.new_empty(k.shape)
        frames = (n_rope // per_frame, per_frame)
        src, dst = k[:, :, :n_rope].unflatten(2, frames), keys[:, :, :n_rope].unflatten(2, frames)
        dst[..., : self.k_unrotated, :] = src[..., : self.k_unrotated, :]
        apply_rope(src[..., self.k_unrotated :, :], cos, sin, out=dst[..., self.k_unrotated :, :])
        keys[:, :, n_rope:] = k[:, :, n_rope:]
        return keys


class MemoryAttentionLayer(nn.Module):
    """Pre-norm layer: RoPE self-attention, RoPE cross-attention to memory (keys get their position
    encoding added), then a ReLU feed-forward."""

    def __init__(
        self,
        d_model: int = 256,
        mem_dim: int = 64,
        dim_feedforward: int = 2048,
        num_heads: int = 1,
        dropout: float = 0.1,
        feat_sizes: tuple[int, int] = (64, 64),
        k_grid: int | None = None,
        k_unrotated: int = 0,
        pool: PooledMemoryConfig | None = None,
    ) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(d_model, num_heads, dropout=dropout, feat_sizes=feat_sizes)
        self.cross_attn_image = RoPEAttention(
            d_model, num_heads, dropout=dropout, kv_in_dim=mem_dim, rope_k_repeat=True, feat_sizes=feat_sizes,
            k_grid=k_grid, k_unrotated=k_unrotated, pool=pool,
        )
        self.linear1 = Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.dropout1(self.self_attn(y, y, y))
        y = self.norm2(x)
        x = x + self.dropout2(self.cross_attn_image(y, memory + memory_pos, memory, num_k_exclude_rope))
        y = self.norm3(x)
        return x + self.dropout3(self.linear2(self.dropout(self.linear1(y, "relu"))))


class MemoryAttention(nn.Module):
    """A stack of :class:`MemoryAttentionLayer` with a final LayerNorm.

    ``forward(curr (B, N, C), curr_pos (B, N, C), memory (B, M, mem_dim), memory_pos (B, M, mem_dim))``
    returns ``(B, N, C)``. The input is ``curr + 0.1 * curr_pos``; position enters later only through RoPE
    and the memory keys.
    """

    def __init__(self, d_model: int = 256, num_layers: int = 4, **layer_kwargs) -> None:
        super().__init__()
        self.d_model = d_model
        self.layers = nn.ModuleList(MemoryAttentionLayer(d_model, **layer_kwargs) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        x = curr + 0.1 * curr_pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_obj_ptr_tokens)
        return self.norm(x)
