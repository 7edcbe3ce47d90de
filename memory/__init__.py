"""The memory bank: what is remembered of past frames for each tracked object, and for how long."""
from .admission import AdmissionPolicy, AdmitAll, FrameQuality, QualityGate
from .bank import (
    FrameMemory,
    MemoryBank,
    MemorySettings,
    Selection,
    closest_prompts,
    fifo_frames,
)

__all__ = [
    "AdmissionPolicy",
    "AdmitAll",
    "FrameMemory",
    "FrameQuality",
    "MemoryBank",
    "MemorySettings",
    "QualityGate",
    "Selection",
    "closest_prompts",
    "fifo_frames",
]
