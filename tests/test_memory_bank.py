"""Memory selection as SAM 2 does it, admission, and eviction that keeps memory bounded."""
from __future__ import annotations

import pytest
import torch

from memory import (
    FrameQuality,
    MemoryBank,
    MemorySettings,
    QualityGate,
    closest_prompts,
    fifo_frames,
)


def _bank(**settings) -> MemoryBank:
    admission = settings.pop("admission", None)
    return MemoryBank(MemorySettings(**settings), num_maskmem=7, signed_pointer_positions=True, admission=admission)


def _add(bank, frame, prompted=False, quality=None):
    return bank.add(frame, torch.full((4, 2, 2), float(frame)), torch.full((8,), float(frame)), 1.0, prompted, quality)


def test_fifo_frames_follow_sam2_examples():
    assert [t for _, t in fifo_frames(20, False, 7, 1)] == [14, 15, 16, 17, 18, 19]
    assert [t for _, t in fifo_frames(20, False, 7, 5)] == [-5, 0, 5, 10, 15, 19]
    assert [t for _, t in fifo_frames(20, True, 7, 1)] == [26, 25, 24, 23, 22, 21]
    assert [p for p, _ in fifo_frames(20, False, 7, 1)] == [1, 2, 3, 4, 5, 6]


def test_closest_prompts_keeps_before_after_then_nearest():
    assert closest_prompts(10, [0, 30, 9, 12], -1) == [0, 30, 9, 12]
    assert closest_prompts(10, [0, 30, 9, 12], 2) == [9, 12]
    assert closest_prompts(10, [0, 30, 9, 12], 3) == [9, 12, 0]
    assert closest_prompts(40, [0, 30, 9, 12], 2) == [30, 12]


def test_selection_order_positions_and_pointers():
    bank = _add_range(_bank(), prompted=[0], frames=range(0, 20))
    sel = bank.select(20)
    assert sel.time_positions == [0, 1, 2, 3, 4, 5, 6]
    assert [int(f[0, 0, 0]) for f in sel.features] == [0, 14, 15, 16, 17, 18, 19]
    # the prompted frame's pointer (distance 20), then previous frames at distances 1..15
    assert sel.pointer_positions == [20] + list(range(1, 16))
    assert int(sel.pointers[1][0]) == 19


def test_only_past_prompted_pointers_and_signed_positions_in_reverse():
    bank = _add_range(_bank(), prompted=[0, 30], frames=[0, 30, 21, 22])
    sel = bank.select(20, reverse=True)
    assert [int(p[0]) for p in sel.pointers] == [30, 21, 22]  # frame 0 is in the future when going back
    assert sel.pointer_positions == [10, 1, 2]
    unsigned = MemoryBank(MemorySettings(), 7, signed_pointer_positions=False)
    _add(unsigned, 30, prompted=True)
    assert unsigned.select(20, reverse=False, num_frames=40).pointer_positions == []  # future, not used
    assert unsigned.select(40, reverse=False).pointer_positions == [10]


def test_pointer_budget_is_capped_by_video_length():
    bank = _add_range(_bank(), prompted=[0], frames=range(10))
    sel = bank.select(10, num_frames=11)
    assert sel.max_pointers == 11 and sel.pointer_positions == [10] + list(range(1, 10))


def _add_range(bank, prompted, frames):
    for t in frames:
        _add(bank, t, prompted=t in prompted)
    return bank


def test_live_pruning_keeps_memory_bounded():
    bank = _bank()
    _add(bank, 0, prompted=True)
    sizes = []
    for t in range(1, 2000):
        _add(bank, t, quality=FrameQuality(0.9, 1.0))
        bank.prune([(t + 1, False)])  # as the live tracker: tracking resumes at the next frame
        sizes.append((len(bank), sum(bank.get(f).features is not None for f in range(t + 1) if f in bank)))
    # 1 prompted frame + 15 pointers, of which the 6 newest keep their features
    assert max(sizes) == sizes[-1] == (16, 7)
    assert bank.nbytes() == _bytes_for(features=7, pointers=16)
    # selection after pruning is what it would have been without pruning
    full = _add_range(_bank(), prompted=[0], frames=range(2000))
    a, b = bank.select(2000), full.select(2000)
    assert a.time_positions == b.time_positions and a.pointer_positions == b.pointer_positions
    assert all(torch.equal(x, y) for x, y in zip(a.features, b.features))


def _bytes_for(features, pointers):
    return features * 4 * 2 * 2 * 2 + pointers * 8 * 4  # bfloat16 features, float32 pointers


def test_pruning_with_stride_keeps_the_grid():
    bank = _bank(temporal_stride=3)
    _add(bank, 0, prompted=True)
    for t in range(1, 100):
        _add(bank, t)
        bank.prune([(t + 1, False)])
    full = _add_range(_bank(temporal_stride=3), prompted=[0], frames=range(100))
    for g in (100,):
        a, b = bank.select(g), full.select(g)
        assert a.time_positions == b.time_positions and a.pointer_positions == b.pointer_positions


def test_prompted_frames_are_capped_keeping_first_and_latest():
    bank = _bank(max_prompted_frames=3)
    for t in (5, 10, 15, 20, 25):
        _add(bank, t, prompted=True)
    assert bank.prompted_frames == [5, 20, 25]


def test_quality_gate_leaves_gaps_and_always_admits_user_input():
    bank = _bank(admission=QualityGate(min_iou=0.7, min_object_score=0.0))
    assert not _add(bank, 1, quality=FrameQuality(iou=0.5, object_score=3.0))
    assert not _add(bank, 2, quality=FrameQuality(iou=0.9, object_score=-1.0))
    assert _add(bank, 3, quality=FrameQuality(iou=0.9, object_score=1.0))
    assert _add(bank, 4)  # a correction: no quality, always kept
    assert 1 not in bank and 2 not in bank and 3 in bank and 4 in bank


def test_storage_dtype_and_device():
    bank = _bank(storage_dtype=torch.float16, storage_device="cpu")
    _add(bank, 0, prompted=True)
    assert bank.get(0).features.dtype == torch.float16 and bank.get(0).obj_ptr.dtype == torch.float32


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_prompts_in_attention"):
        MemorySettings(max_prompts_in_attention=1)
    with pytest.raises(ValueError, match="temporal_stride"):
        MemorySettings(temporal_stride=0)
