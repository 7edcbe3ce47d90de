"""vos.model.kernels: the packed oneDNN path of Linear agrees with F.linear and never gets in the way of training;
the bfloat16 CPU attention agrees with softmax attention; attention over unprojected values agrees with attention
over projected ones, and is taken only where the packed path runs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vos.model.kernels import (
    CPU_BFLOAT16,
    PACKED_KERNELS_AVAILABLE,
    Linear,
    attention,
    attention_then_values,
    use_packed_kernels,
    values_after_attention,
)

needs_onednn = pytest.mark.skipif(not PACKED_KERNELS_AVAILABLE, reason="this torch build has no oneDNN linear")


def _layer(seed: int = 0) -> Linear:
    torch.manual_seed(seed)
    return Linear(48, 80)


@needs_onednn
@pytest.mark.parametrize("activation, fn", [("none", lambda x: x), ("relu", F.relu), ("gelu", F.gelu)])
def test_packed_path_matches_f_linear(activation, fn):
    layer = _layer()
    x = torch.randn(2, 7, 9, 48)
    with torch.inference_mode():
        packed = layer(x, activation)
        assert layer._packed_weight is not None  # the oneDNN path really ran
        expected = fn(F.linear(x, layer.weight, layer.bias))
    assert packed.shape == (2, 7, 9, 80)
    torch.testing.assert_close(packed, expected, rtol=1e-5, atol=1e-5)


@needs_onednn
def test_turned_off_it_is_f_linear_bit_for_bit():
    layer = use_packed_kernels(nn.Sequential(_layer()), False)[0]
    x = torch.randn(33, 48)
    with torch.inference_mode():
        assert torch.equal(layer(x, "gelu"), F.gelu(F.linear(x, layer.weight, layer.bias)))
    assert layer._packed_weight is None


@needs_onednn
def test_training_takes_the_autograd_path_and_repacks_after_updates():
    layer = _layer()
    x = torch.randn(5, 48)
    with torch.no_grad():
        before = layer(x)
    out = layer(x, "relu")
    assert out.grad_fn is not None
    out.sum().backward()
    assert layer.weight.grad is not None
    with torch.no_grad():
        layer.weight.add_(1.0)  # an optimiser step changes the weight in place
        after = layer(x)
    torch.testing.assert_close(after, F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-4)
    assert not torch.allclose(before, after)


@needs_onednn
def test_bfloat16_under_autocast_and_state_dict_unchanged():
    layer = _layer()
    assert list(layer.state_dict()) == ["weight", "bias"]
    x = torch.randn(64, 48)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    assert out.dtype == torch.bfloat16
    # oneDNN packs bfloat16 weights only where the CPU computes bfloat16 natively; elsewhere plain F.linear runs.
    assert (layer._packed_weight is not None) == CPU_BFLOAT16
    torch.testing.assert_close(out.float(), F.linear(x, layer.weight, layer.bias), rtol=0.05, atol=0.05)


@needs_onednn
def test_hiera_position_embedding_cache_follows_the_weights():
    from vos.model.hiera import Hiera, HieraConfig

    trunk = Hiera(HieraConfig(embed_dim=16, stages=(1, 1, 1, 1), global_att_blocks=(), window_spec=(4, 2, 2, 2),
                              window_pos_embed_bkg_spatial_size=(4, 4))).eval()
    with torch.no_grad():
        first = trunk.position_embedding(8, 8)
        assert trunk.position_embedding(8, 8) is first  # cached while nothing changes
        trunk.load_state_dict({**trunk.state_dict(), "pos_embed": torch.ones_like(trunk.pos_embed)})
        updated = trunk.position_embedding(8, 8)
        assert not torch.equal(updated, first)
        torch.testing.assert_close(updated, trunk._position_embedding(8, 8))
        assert trunk.position_embedding(12, 12).shape == (1, 12, 12, 16)
    assert trunk.position_embedding(8, 8).requires_grad  # training recomputes it, through autograd


@pytest.mark.parametrize("batch,n_q,n_k", [((), 100, 70), ((2, 3), 1200, 300), ((3, 1), 512, 1030)])
def test_bfloat16_attention_blocks_match_softmax_attention(batch, n_q, n_k):
    """The bfloat16 CPU path (query blocks, one reused score buffer, in-place softmax) against a plain float32
    softmax attention, for blocks that do and do not divide the queries and for broadcast key batches."""
    torch.manual_seed(0)
    q = torch.randn(*batch, n_q, 32)
    k, v = torch.randn(*batch[:-1], 1, n_k, 32) if batch else torch.randn(n_k, 32), torch.randn(n_k, 32)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 32**0.5, dim=-1) @ v
    got = attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert got.dtype == torch.bfloat16 and got.shape == expected.shape
    torch.testing.assert_close(got.float(), expected, atol=0.03, rtol=0.03)
    with torch.enable_grad():  # the autograd path gives the same values
        q_grad = q.bfloat16().requires_grad_()
        torch.testing.assert_close(attention(q_grad, k.bfloat16(), v.bfloat16()).detach(), got, atol=0, rtol=0)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_values_projected_after_attention_match_values_projected_before(heads, dtype):
    """Memory attention's cross-attention shape: 64-channel values through a wider projection, 600 queries (two
    blocks, the second partial) over 700 keys; per-head projections where there are several heads."""
    torch.manual_seed(0)
    proj = Linear(64, 256)
    d = 256 // heads
    q, k = torch.randn(2, heads, 600, d), torch.randn(2, heads, 700, d)
    values = torch.randn(2, 700, 64)
    with torch.inference_mode():
        expected = F.scaled_dot_product_attention(q, k, F.linear(values, proj.weight, proj.bias).reshape(2, 700, heads, d).transpose(1, 2))
        with torch.autocast("cpu", torch.bfloat16, enabled=dtype == torch.bfloat16):
            got = attention_then_values(q.to(dtype), k.to(dtype), values, proj)
    assert got.shape == expected.shape == (2, heads, 600, d) and got.dtype == dtype
    tolerance = 1e-5 if dtype == torch.float32 else 0.03
    torch.testing.assert_close(got.float(), expected, atol=tolerance, rtol=tolerance)


@needs_onednn
def test_values_are_projected_after_attention_only_on_the_bfloat16_inference_path():
    proj, values = Linear(64, 256), torch.randn(1, 30, 64)
    with torch.inference_mode():
        assert not values_after_attention(proj, 1, values)  # float32: PyTorch's flash attention stays
        with torch.autocast("cpu", torch.bfloat16):
            # Where this CPU computes bfloat16 natively; elsewhere the projection leaves the packed path.
            assert values_after_attention(proj, 1, values) == values_after_attention(proj, 3, values) == CPU_BFLOAT16
            assert not values_after_attention(proj, 4, values)  # as many channels either way: nothing to gain
            use_packed_kernels(nn.Sequential(proj), False)  # bit-identical agreement with the official code asked for
            assert not values_after_attention(proj, 1, values)
    use_packed_kernels(nn.Sequential(proj), True)
    with torch.autocast("cpu", torch.bfloat16):
        assert not values_after_attention(proj, 1, values)  # autograd records this projection


@needs_onednn
def test_memory_cross_attention_in_bfloat16_projects_values_after_attention(monkeypatch):
    """RoPE cross-attention over 3 memory frames and 4 pointer tokens, as memory attention calls it: under bfloat16
    autocast it takes the late projection (where this CPU computes bfloat16 natively) and agrees with the
    values-first path that use_packed_kernels(False) keeps."""
    import vos.model.memory_attention as memory_attention

    torch.manual_seed(0)
    layer = memory_attention.RoPEAttention(128, 1, kv_in_dim=64, rope_k_repeat=True, feat_sizes=(8, 8)).eval()
    x, memory = torch.randn(2, 64, 128), torch.randn(2, 3 * 64 + 4, 64)
    calls = []
    monkeypatch.setattr(memory_attention, "attention_then_values",
                        lambda *a: calls.append(1) or attention_then_values(*a))
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        late = layer(x, memory, memory, num_k_exclude_rope=4)
        assert len(calls) == int(CPU_BFLOAT16)
        use_packed_kernels(layer, False)
        first = layer(x, memory, memory, num_k_exclude_rope=4)
        assert len(calls) == int(CPU_BFLOAT16)
    assert late.shape == first.shape == (2, 64, 128)
    torch.testing.assert_close(late.float(), first.float(), atol=0.03, rtol=0.03)
