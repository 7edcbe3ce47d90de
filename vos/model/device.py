"""Checking a requested device before any work, so that a missing GPU is a one-line error, not a traceback
from deep inside PyTorch."""
from __future__ import annotations

import torch


def check_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device` (``None``: the first CUDA GPU when there is one, else the CPU);
    ``ValueError`` if it is not a device name or this machine has no such device."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a device name (cpu, cuda, cuda:1, mps): {exc}") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: PyTorch sees no CUDA GPU on this machine (a CPU-only build, "
                             "no driver, or CUDA_VISIBLE_DEVICES hides them); use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s), numbered from 0")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: Apple's MPS backend is not available here; use --device cpu")
    return parsed
