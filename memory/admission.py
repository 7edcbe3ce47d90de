"""Admission policies: which tracked (not prompted) frames enter an object's memory FIFO."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class FrameQuality:
    """What the decoder said about one object on one frame: predicted IoU of the chosen mask and the
    object-score logit (positive when the object is judged present)."""

    iou: float
    object_score: float


class AdmissionPolicy(Protocol):
    def __call__(self, quality: FrameQuality) -> bool: ...


@dataclass(frozen=True)
class AdmitAll:
    """SAM 2's behaviour: every tracked frame becomes a memory."""

    def __call__(self, quality: FrameQuality) -> bool:
        return True


@dataclass(frozen=True)
class QualityGate:
    """Admit a frame only when its predicted IoU and object score pass thresholds, so that frames where
    the object is occluded or the mask is doubtful do not displace good memories (in the spirit of
    SAMURAI and SAM2Long). A rejected frame leaves a gap in the FIFO: selection skips it, as SAM 2
    skips frames it has no memory of."""

    min_iou: float = 0.5
    min_object_score: float = 0.0

    def __call__(self, quality: FrameQuality) -> bool:
        return quality.iou >= self.min_iou and quality.object_score > self.min_object_score
