"""Wall time per model stage, by wrapping the model's per-frame calls (shared by the speed benchmarks)."""
from __future__ import annotations

import time

STAGES = {
    "image encoder": "encode_image",
    "memory attention": "condition_on_memories",
    "decoder": "predict_masks",
    "memory encoder": "encode_memory",
}


def time_stages(model, totals: dict[str, float]):
    """Wrap ``model``'s stage methods so that each call adds its wall time to ``totals[stage]``."""
    for stage, name in STAGES.items():
        original = getattr(model, name)

        def wrapper(*args, _original=original, _stage=stage, **kwargs):
            t0 = time.perf_counter()
            out = _original(*args, **kwargs)
            totals[_stage] += time.perf_counter() - t0
            return out

        setattr(model, name, wrapper)
    return model
