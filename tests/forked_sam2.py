"""Official forks of SAM 2 that install themselves as a top-level ``sam2`` package (EdgeTAM's ``edgetam-dimos``,
EfficientTAM's ``efficient-track-anything``): each lives in its own folder under ``.oracles/`` and is imported
with ``sam2`` swapped in ``sys.modules`` for the time of the import and the build only, so it never shadows the
official ``sam2`` 1.1.0 oracle. The classes it builds keep their own module globals afterwards."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator

ORACLES = Path(__file__).resolve().parents[1] / ".oracles"


@contextlib.contextmanager
def sam2_from(folder: Path) -> Iterator[None]:
    """``import sam2`` gives the fork installed in ``folder`` inside the block; the official package again
    afterwards."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "sam2" or k.startswith("sam2.")}
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for k in [k for k in sys.modules if k == "sam2" or k.startswith("sam2.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def promote_memories(model) -> None:
    """Make ``model``'s memory attention take float32 memories. The July 2024 code stores memories in bfloat16
    and they reach memory attention as they are when no float32 object pointer is concatenated to them (going
    backwards from the last frame, say): on CUDA under autocast that works, on the CPU it fails on mixed
    dtypes. Promote them as the concatenation otherwise does."""
    attend = model.memory_attention.forward
    model.memory_attention.forward = lambda *a, memory, **kw: attend(*a, memory=memory.float(), **kw)
