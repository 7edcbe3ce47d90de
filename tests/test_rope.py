"""Rotary position encoding: written in place (into a view of a larger key tensor), it gives the same bits as
the plain rotate-and-stack formula."""
from __future__ import annotations

import pytest
import torch

from vos.model.position_encoding import apply_rope


def _reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    pairs = x.float().unflatten(-1, (-1, 2))
    real, imag = pairs[..., 0], pairs[..., 1]
    return torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1).flatten(-2).to(x.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rope_into_a_view_of_the_keys_is_the_stacked_formula_bit_for_bit(dtype):
    torch.manual_seed(0)
    keys = torch.randn(2, 1, 3 * 16 + 4, 8).to(dtype)  # 3 frames of 16 tokens, then 4 pointer tokens
    cos, sin = torch.randn(16, 4), torch.randn(16, 4)
    frames = keys[:, :, :48].unflatten(2, (3, 16))
    expected = _reference(frames, cos, sin)
    assert torch.equal(apply_rope(frames, cos, sin), expected)
    out = torch.full_like(keys, float("nan"))
    apply_rope(frames, cos, sin, out=out[:, :, :48].unflatten(2, (3, 16)))
    assert torch.equal(out[:, :, :48].unflatten(2, (3, 16)), expected)
    assert out[:, :, 48:].isnan().all()  # nothing written past the rotated keys


def test_rope_into_a_view_keeps_gradients():
    torch.manual_seed(0)
    x = torch.randn(1, 1, 2, 4, 8, requires_grad=True)
    cos, sin = torch.randn(4, 4), torch.randn(4, 4)
    out = torch.empty(1, 1, 9, 8)
    apply_rope(x, cos, sin, out=out[:, :, :8].unflatten(2, (2, 4)))
    out[:, :, :8].sum().backward()
    expected = torch.autograd.grad(_reference(x, cos, sin).sum(), x)[0]
    torch.testing.assert_close(x.grad, expected)
