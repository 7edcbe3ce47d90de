"""CPU kernels: linear layers on oneDNN with pre-packed weights, and attention that suits bfloat16.

PyTorch's CPU ``F.linear`` calls MKL's sgemm, which on the narrow shapes of these models (K of 96-256 over
tens of thousands of tokens) reached a third to 85% of what oneDNN does with weights reordered once into its
blocked layout (measured on an AMD EPYC, 2 threads; the image encoder of hiera_t at 512 px went from 0.59
to 0.43 s). oneDNN also fuses the following ReLU or exact (erf) GELU into the matrix product, saving a pass
over the widest activations. Results agree with ``F.linear`` to float rounding (about 1e-6 relative);
:func:`use_packed_kernels` turns the path off where bit-identical agreement with the official
implementation matters.

The packed path is taken only where it cannot change training: CPU tensors, float32 or bfloat16, and no
autograd graph being recorded. oneDNN packs bfloat16 weights only on CPUs with native bfloat16 arithmetic
(AVX-512 BW/VL/DQ or AVX-NE-CONVERT; :data:`CPU_BFLOAT16`); elsewhere (AVX2-only CPUs) bfloat16 runs through
plain ``F.linear``, which works on any CPU, only slower than float32 there. The packed copy is rebuilt whenever the weight changes (its version counter
moves) or another dtype is asked for.

PyTorch's CPU flash attention runs no faster in bfloat16 than in float32, while plain batched matrix
products do (about 2x on the short windows of Hiera and on memory attention), so :func:`attention` uses
those for bfloat16 on the CPU, 512 queries at a time: that bounds the score matrix, and measured fastest
(against 256 and 1024) on memory attention at 1024 px. Where values are narrower than the heads they are
projected into (memory attention's 64-channel memories), those products take the values as they are and
project the result (:func:`values_after_attention`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_ACTIVATIONS = {"none": (lambda x: x, ""), "relu": (F.relu, ""), "gelu": (F.gelu, "none")}


def _onednn_available() -> bool:
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and hasattr(ops, "_linear_pointwise") and hasattr(ops, "_reorder_linear_weight")


def _cpu_bfloat16() -> bool:
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    try:
        return bool(check()) if check is not None else False
    except RuntimeError:
        return False


PACKED_KERNELS_AVAILABLE = _onednn_available()
# Whether this CPU computes bfloat16 natively (oneDNN's bfloat16 kernels, packed weights included, need it).
CPU_BFLOAT16 = PACKED_KERNELS_AVAILABLE and _cpu_bfloat16()


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, same state-dict keys) with an optional fused activation:
    ``forward(x (..., in), activation="none" | "relu" | "gelu") -> (..., out)``."""

    packed: bool = PACKED_KERNELS_AVAILABLE

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self._packed_weight: tuple[tuple, torch.Tensor, torch.Tensor | None] | None = None

    def _weights(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = (dtype, self.weight._version, self.weight.data_ptr(), None if self.bias is None else self.bias._version)
        if self._packed_weight is None or self._packed_weight[0] != key:
            with torch.no_grad():
                weight = torch.ops.mkldnn._reorder_linear_weight(self.weight.detach().to(dtype), None)
                bias = None if self.bias is None else self.bias.detach().to(dtype)
            self._packed_weight = (key, weight, bias)
        return self._packed_weight[1], self._packed_weight[2]

    def _dtype(self, x: torch.Tensor) -> torch.dtype | None:
        """The dtype the packed kernel would run in, or None where it must not run."""
        # Under torch.compile the compiler picks (and packs) its own kernels.
        if not self.packed or x.device.type != "cpu" or self.weight.device.type != "cpu" or torch.compiler.is_compiling():
            return None
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return None
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        if dtype == torch.bfloat16 and not CPU_BFLOAT16:
            return None
        return dtype if dtype in (torch.float32, torch.bfloat16) else None

    def runs_packed(self, x: torch.Tensor) -> bool:
        """Whether ``x`` would go through the packed path: where results within float rounding of the official
        ones are accepted, so other layout or ordering choices that only change rounding may be taken too."""
        return self._dtype(x) is not None

    def forward(self, x: torch.Tensor, activation: str = "none") -> torch.Tensor:
        act, algorithm = _ACTIVATIONS[activation]
        dtype = self._dtype(x)
        if dtype is None:
            return act(F.linear(x, self.weight, self.bias))
        weight, bias = self._weights(dtype)
        return torch.ops.mkldnn._linear_pointwise(x.to(dtype), weight, bias, activation, [], algorithm)


def use_packed_kernels(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Turn the oneDNN path of every :class:`Linear` in ``model`` on or off; returns ``model``."""
    for module in model.modules():
        if isinstance(module, Linear):
            module.packed = enabled and PACKED_KERNELS_AVAILABLE
            module._packed_weight = None
    return model


_QUERY_BLOCK = 512


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0) -> torch.Tensor:
    """Softmax attention, ``q (..., Nq, D)``, ``k, v (..., Nk, D)`` -> ``(..., Nq, D)``, scaled by ``D ** -0.5``."""
    if q.dtype != torch.bfloat16 or q.device.type != "cpu" or dropout_p > 0.0 or torch.compiler.is_compiling():
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    return _blocked_attention(q, k, v)


def _blocked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """:func:`attention` as matrix products, ``_QUERY_BLOCK`` queries at a time; ``v (..., Nk, Dv)`` may be of
    another width than ``q`` and ``k`` and broadcasts over their leading dimensions."""
    q = q * q.shape[-1] ** -0.5
    k_t = k.transpose(-2, -1).contiguous()  # one copy, then every block's product reads keys in order (2x faster)
    v = v.to(q.dtype)
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        blocks = [torch.softmax(q_block @ k_t, dim=-1) @ v for q_block in q.split(_QUERY_BLOCK, dim=-2)]
        return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=-2)
    # Without autograd, one score buffer serves every block and the softmax runs in place: no fresh 30 MB
    # allocation per block (20% of memory attention's time at 1024 px).
    batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    n_q, n_k = q.shape[-2], k.shape[-2]
    out = q.new_empty(batch + (n_q, v.shape[-1]))
    scores = q.new_empty(batch + (min(n_q, _QUERY_BLOCK), n_k))
    for start in range(0, n_q, _QUERY_BLOCK):
        rows = slice(start, min(start + _QUERY_BLOCK, n_q))
        if rows.stop - rows.start != scores.shape[-2]:
            scores = q.new_empty(batch + (rows.stop - rows.start, n_k))
        torch.matmul(q[..., rows, :], k_t, out=scores)
        torch.ops.aten._softmax.out(scores, -1, False, out=scores)
        out[..., rows, :] = scores @ v
    return out


def values_after_attention(value_proj: Linear, num_heads: int, x: torch.Tensor) -> bool:
    """Whether attention with ``num_heads`` heads over values ``x (..., in_features)`` is cheaper on the values
    as they are, projected by ``value_proj`` afterwards (:func:`attention_then_values`).

    Each row of attention weights sums to one, so ``P (V W^T + b) = (P V) W^T + b``: the product with the
    attention weights, half of attention's work, then runs on ``in_features`` channels per head instead of
    ``out_features / num_heads``. Memory attention's cross-attention reads 64-channel memories through a
    256-channel projection with one head: a quarter of that half. Taken where bfloat16 attention runs as
    blocked matrix products anyway (:func:`attention`) and the projection on the packed path (no autograd,
    not compiled), outside an export: memory attention 1.3x at 1024 px and 1.15x at 512 px (hiera_t, AMD EPYC
    with AVX-512 BF16). In float32 PyTorch's flash attention, which needs values as wide as keys, stays: the
    blocked form measured 0.99-1.08x there, within this machine's drift, for 60 MB score buffers.
    """
    return (num_heads * value_proj.in_features < value_proj.out_features
            and value_proj._dtype(x) == torch.bfloat16 and not torch.compiler.is_exporting())


def attention_then_values(q: torch.Tensor, k: torch.Tensor, values: torch.Tensor, value_proj: Linear) -> torch.Tensor:
    """Attention of ``q (B, heads, Nq, d)``, ``k (B, heads, Nk, d)`` over ``values (B, Nk, in_features)`` as
    ``value_proj`` would project them into ``heads`` heads of ``d`` channels: ``(B, heads, Nq, d)``."""
    heads, d = q.shape[1], q.shape[-1]
    out = _blocked_attention(q, k, values[:, None])  # (B, heads, Nq, in_features)
    if heads == 1:
        return value_proj(out)
    weight = value_proj.weight.reshape(heads, d, value_proj.in_features).transpose(1, 2).to(out.dtype)
    out = torch.matmul(out, weight)
    return out if value_proj.bias is None else out + value_proj.bias.reshape(heads, 1, d).to(out.dtype)
