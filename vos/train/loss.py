"""SAM 2's training losses for one frame and one prompting step: focal ×20 + dice + IoU (L1) on the mask
heads, object-score BCE; with several candidate masks only the best one (lowest 20·focal + dice) is
back-propagated through the mask terms, while the IoU head learns on all of them."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.interface import HeadOutput

WEIGHTS = {"focal": 20.0, "dice": 1.0, "iou": 1.0, "object": 1.0}


def sigmoid_focal(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Per-mask focal loss, mean over pixels: ``(B, M, H, W)`` -> ``(B, M)``."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(-1)


def dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - (2·inter + 1) / (sum + 1)`` per mask: ``(B, M, H, W)`` -> ``(B, M)``."""
    p = torch.sigmoid(logits).flatten(2)
    t = target.flatten(2)
    return 1 - (2 * (p * t).sum(-1) + 1) / (p.sum(-1) + t.sum(-1) + 1)


def mask_iou(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of the thresholded masks with the target: ``(B, M, H, W)`` -> ``(B, M)``; 1 when both are empty."""
    pred = (logits > 0).flatten(2).float()
    t = target.flatten(2)
    inter = (pred * t).sum(-1)
    union = pred.sum(-1) + t.sum(-1) - inter
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def step_loss(heads: HeadOutput, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Loss terms of one decoder pass for ``B`` objects, each ``(B,)`` and already weighted.

    ``target (B, 1, S, S)`` in {0, 1} at the model's input size. Mask terms count only where the object
    is present, as in SAM 2.
    """
    logits = heads.high_res_multimasks.float()
    target = target.float()
    focal = sigmoid_focal(logits, target.expand_as(logits))
    dc = dice(logits, target.expand_as(logits))
    best = (WEIGHTS["focal"] * focal + WEIGHTS["dice"] * dc).argmin(dim=1, keepdim=True)
    iou_err = (heads.ious.float() - mask_iou(logits, target.expand_as(logits)).detach()).abs().mean(dim=1)
    present = target.flatten(1).any(dim=1).float()
    object_loss = F.binary_cross_entropy_with_logits(heads.object_score.float()[:, 0], present, reduction="none")
    return {
        "focal": WEIGHTS["focal"] * present * focal.gather(1, best)[:, 0],
        "dice": WEIGHTS["dice"] * present * dc.gather(1, best)[:, 0],
        "iou": WEIGHTS["iou"] * present * iou_err,
        "object": WEIGHTS["object"] * object_loss,
    }
