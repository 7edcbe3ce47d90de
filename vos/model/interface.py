"""The per-frame model interface: what the trackers call on a model, whichever runtime computes it.

:class:`vos.model.sam2.SAM2Model` (PyTorch) and :class:`vos.export.runtime.OnnxModel` (ONNX Runtime) both
declare :class:`TrackingModel`, so :class:`vos.tracking.core.InferenceCore` runs either through the same
memory bank and the same per-frame decisions, and never asks which one it holds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .config import ModelConfig
from .image_encoder import ImageFeatures


@dataclass
class HeadOutput:
    """What the SAM heads predict for a batch of ``B`` objects on one frame.

    ``low_res_multimasks (B, M, 4h, 4w)`` and ``high_res_multimasks (B, M, S, S)`` hold every candidate;
    ``low_res_masks (B, 1, 4h, 4w)``, ``high_res_masks (B, 1, S, S)`` the chosen one; ``ious (B, M)``;
    ``obj_ptr (B, C)`` the object pointer; ``object_score (B, 1)`` the presence logit.
    """

    low_res_multimasks: torch.Tensor
    high_res_multimasks: torch.Tensor
    ious: torch.Tensor
    low_res_masks: torch.Tensor
    high_res_masks: torch.Tensor
    obj_ptr: torch.Tensor
    object_score: torch.Tensor


def pointer_times(positions: torch.Tensor, max_pointers: int) -> torch.Tensor:
    """The temporal distances ``positions (P,)`` of object pointers' frames as memory attention takes them:
    divided by the pointer budget minus one, as SAM 2 normalises them."""
    return positions.float() / max(max_pointers - 1, 1)


class TrackingModel(Protocol):
    """The per-frame methods of a tracking model; shapes are for ``B`` objects on one frame, features
    ``(B, C, h, w)`` at stride 16 of the square input ``S = image_size``.

    ``supports_autocast``: the model computes under ``torch.autocast``, so the trackers' fast precisions
    (bfloat16, float16) apply to it; a model that computes in float32 whatever autocast says declares
    ``False`` and the trackers refuse those precisions for it. ``batches_images``: the model takes several
    frames at once: :meth:`encode_image` images ``(B, 3, S, S)``, and the other methods the features of ``B``
    different frames, one an object (a fixed-shape graph takes one frame, broadcast over its objects).
    """

    config: ModelConfig
    image_size: int
    mem_dim: int
    supports_autocast: bool
    batches_images: bool

    @property
    def device(self) -> torch.device: ...

    def eval(self) -> TrackingModel: ...

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        """``(1, 3, S, S)`` normalised image (``(B, 3, S, S)`` images with ``batches_images``) -> its features
        (high-resolution levels ready for the decoder)."""
        ...

    def without_memory(self, features: torch.Tensor) -> torch.Tensor:
        """Features of a frame prompted before any memory exists: ``(B, C, h, w)`` -> the same shape."""
        ...

    def condition_on_memories(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memories: torch.Tensor,
        time_positions: torch.Tensor,
        pointers: torch.Tensor | None = None,
        pointer_times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``curr, curr_pos (B, hw, C)`` conditioned on ``memories (B, F, mem_dim, ...)`` at temporal slots
        ``time_positions (F,)`` and ``pointers (B, P, C)`` at :func:`pointer_times` ``(P,)`` -> ``(B, hw, C)``."""
        ...

    def predict_masks(
        self,
        features: torch.Tensor,
        high_res_features: list[torch.Tensor],
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> HeadOutput:
        """The decoder heads on ``features (B, C, h, w)``, with clicks ``point_coords (B, N, 2)`` in input
        pixels and ``point_labels (B, N)`` (a box is two clicks labelled 2 and 3) and previous logits
        ``mask_inputs (B, 1, H', W')``."""
        ...

    def mask_as_output(self, features: torch.Tensor, high_res_features: list[torch.Tensor], mask: torch.Tensor) -> HeadOutput:
        """A mask prompt ``(B, 1, S, S)`` taken as the frame's output, with its object pointer."""
        ...

    def encode_memory(
        self, pix_feat: torch.Tensor, high_res_mask_logits: torch.Tensor, object_score: torch.Tensor, binarize: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Memories of ``high_res_mask_logits (B, 1, S, S)`` with presence ``object_score (B, 1)`` on a frame's
        ``pix_feat (1 or B, C, h, w)``: ``features`` and positions, ``(B, mem_dim, ...)`` each."""
        ...

    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        """Whether the decoder should output 3 candidates (ambiguous prompts) rather than 1: a decision of the
        config alone, so every implementation shares this one."""
        cfg = self.config
        return (
            cfg.multimask_output_in_sam
            and (is_init_cond_frame or cfg.multimask_output_for_tracking)
            and cfg.multimask_min_pt_num <= num_points <= cfg.multimask_max_pt_num
        )
