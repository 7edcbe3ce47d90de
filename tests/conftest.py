from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared data folder {SHARED} is absent (it is present in CI)")
    return SHARED


_THREADS: list[int] = []  # PyTorch's thread count when the first test started


@pytest.fixture(autouse=True)
def _torch_threads_restored():
    """The commands choose PyTorch's thread count from the cores free at start-up, a process-wide setting:
    restored after each test, so that a test's numbers do not depend on the load when an earlier one ran."""
    import torch

    if not _THREADS:
        _THREADS.append(torch.get_num_threads())
    yield
    if torch.get_num_threads() != _THREADS[0]:
        torch.set_num_threads(_THREADS[0])
