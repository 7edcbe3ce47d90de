"""What the predictor and the tracker return for one frame."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UnknownNameError
from .prompts import check_palette_id


@dataclass
class FrameResult:
    """Every object's prediction on one frame, at the video's resolution.

    ``logits (N, 1, H, W)`` float32 (positive inside the object), ``object_scores (N,)`` the presence
    logits (positive: visible, negative: occluded or gone), for the objects ``obj_ids`` in that order.
    """

    frame_idx: int
    obj_ids: list[int]
    logits: torch.Tensor
    object_scores: torch.Tensor

    @property
    def masks(self) -> np.ndarray:
        """``(N, H, W)`` boolean masks."""
        return (self.logits[:, 0] > 0).cpu().numpy()

    @property
    def visible(self) -> np.ndarray:
        """``(N,)`` whether each object is judged present on the frame."""
        return (self.object_scores > 0).cpu().numpy()

    def mask(self, obj_id: int) -> np.ndarray:
        """``(H, W)`` boolean mask of one object."""
        if obj_id not in self.obj_ids:
            raise UnknownNameError(f"object {obj_id} is not tracked (objects: {self.obj_ids})")
        return self.masks[self.obj_ids.index(obj_id)]

    def label_map(self) -> np.ndarray:
        """``(H, W)`` uint8 DAVIS-style index map by :func:`owner_map`'s rule. Raises :class:`PromptError`
        for ids a byte cannot hold apart from the background (0 or above 255) rather than writing them as
        other ids."""
        for obj_id in self.obj_ids:
            check_palette_id(obj_id)
        return owner_map(self.obj_ids, self.logits[:, 0]).astype(np.uint8)

    def detections(self):
        """The visible objects as ``supervision.Detections`` (masks, boxes, ``tracker_id`` = object id)."""
        confidence = torch.sigmoid(self.object_scores).cpu().numpy()
        return detections_from_masks(self.obj_ids, self.masks, confidence)


def owner_map(obj_ids: list[int], logits: torch.Tensor) -> np.ndarray:
    """The one rule for who owns a pixel, used wherever vos writes one id per pixel (``vos track``, ``vos
    eval``, label maps): ``logits (N, H, W)`` of the objects ``obj_ids`` -> ``(H, W)`` int64 ids, 0 where
    no object's logit is positive, else the object with the highest logit, the lowest id among equal ones.

    With non-overlapping outputs (:meth:`TrackerSettings.vos_inference`) masks never overlap and this is
    what the official evaluation writer paints; without, the most confident object wins rather than an
    arbitrary one."""
    if not obj_ids:
        return np.zeros(tuple(logits.shape[-2:]), np.int64)
    order = sorted(range(len(obj_ids)), key=obj_ids.__getitem__)
    ranked = logits[order]
    best = ranked.argmax(dim=0)  # the first of equal maxima: the lowest id
    ids = torch.tensor([obj_ids[i] for i in order], device=logits.device)[best]
    return torch.where(ranked.max(dim=0).values > 0, ids, 0).cpu().numpy().astype(np.int64)


def detections_from_masks(obj_ids: list[int], masks: np.ndarray, confidence: np.ndarray | None = None):
    """``supervision.Detections`` of the non-empty masks ``(N, H, W)``, with ``tracker_id`` = object id."""
    import supervision as sv

    keep = masks.reshape(len(masks), -1).any(axis=1) if len(masks) else np.zeros(0, bool)
    masks = masks[keep]
    ids = np.asarray(obj_ids, dtype=int)[keep]
    xyxy = sv.mask_to_xyxy(masks).astype(np.float32) if len(masks) else np.zeros((0, 4), np.float32)
    return sv.Detections(
        xyxy=xyxy,
        mask=masks,
        confidence=None if confidence is None else confidence[keep],
        class_id=ids,
        tracker_id=ids,
    )
