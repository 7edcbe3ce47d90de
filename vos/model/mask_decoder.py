"""Mask decoder: a two-way transformer over prompt tokens and image features, with IoU and object-score heads."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .common import MLP, LayerNorm2d
from .kernels import Linear
from .transformer import TwoWayTransformer


@dataclass
class DecoderOutput:
    """``masks (B, M, 4h, 4w)`` logits, ``iou (B, M)``, ``tokens (B, M', C)`` for the object pointer,
    ``object_score (B, 1)`` logit that the object is present. ``M`` is 3 (multimask) or 1."""

    masks: torch.Tensor
    iou: torch.Tensor
    tokens: torch.Tensor
    object_score: torch.Tensor


class MaskDecoder(nn.Module):
    """Predicts masks from image features and prompt tokens.

    Output tokens are ``[object score, IoU, mask 0 (single), mask 1..3 (multimask)]`` followed by the prompts.

    Args:
        transformer_dim: channel width ``C`` of tokens and image features.
        transformer: the two-way transformer.
        num_multimask_outputs: number of ambiguity-resolving masks (3).
        iou_head_depth, iou_head_hidden_dim: IoU prediction MLP shape.
        use_high_res_features: add stride-4/8 features while upscaling (SAM 2).
        iou_prediction_use_sigmoid: squash predicted IoU into ``[0, 1]``.
        dynamic_multimask_via_stability: in single-mask mode, fall back to the best multimask output
            when the single mask is unstable under a ``±delta`` logit shift.
        pred_obj_scores, pred_obj_scores_mlp: predict an object-presence logit (with an MLP head).
        use_multimask_token_for_obj_ptr: return the multimask tokens (rather than token 0) for pointers.
    """

    def __init__(
        self,
        *,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        use_high_res_features: bool = False,
        iou_prediction_use_sigmoid: bool = False,
        dynamic_multimask_via_stability: bool = False,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
        pred_obj_scores: bool = False,
        pred_obj_scores_mlp: bool = False,
        use_multimask_token_for_obj_ptr: bool = False,
    ) -> None:
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.pred_obj_scores = pred_obj_scores
        if pred_obj_scores:
            self.obj_score_token = nn.Embedding(1, transformer_dim)
        self.use_multimask_token_for_obj_ptr = use_multimask_token_for_obj_ptr
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.use_high_res_features = use_high_res_features
        if use_high_res_features:
            self.conv_s0 = nn.Conv2d(transformer_dim, transformer_dim // 8, kernel_size=1)
            self.conv_s1 = nn.Conv2d(transformer_dim, transformer_dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth,
            sigmoid_output=iou_prediction_use_sigmoid,
        )
        if pred_obj_scores:
            self.pred_obj_score_head = (
                MLP(transformer_dim, transformer_dim, 1, 3) if pred_obj_scores_mlp else Linear(transformer_dim, 1)
            )
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.stability_delta = dynamic_multimask_stability_delta
        self.stability_thresh = dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> DecoderOutput:
        """``image_embeddings (B, C, h, w)``, ``image_pe (1, C, h, w)``, ``sparse (B, N, C)``,
        ``dense (B, C, h, w)``, ``high_res_features`` ``[(B, C/8, 4h, 4w), (B, C/4, 2h, 2w)]``."""
        masks, iou, mask_tokens, object_score = self._predict(
            image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, high_res_features
        )
        if multimask_output:
            masks, iou = masks[:, 1:], iou[:, 1:]
        elif self.dynamic_multimask_via_stability and not self.training:
            masks, iou = self._pick_stable(masks, iou)
        else:
            masks, iou = masks[:, :1], iou[:, :1]
        tokens = mask_tokens[:, 1:] if multimask_output and self.use_multimask_token_for_obj_ptr else mask_tokens[:, :1]
        return DecoderOutput(masks=masks, iou=iou, tokens=tokens, object_score=object_score)

    def _predict(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        high_res_features: list[torch.Tensor] | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        heads = [self.iou_token.weight, self.mask_tokens.weight]
        if self.pred_obj_scores:
            heads.insert(0, self.obj_score_token.weight)
        first_mask = len(heads) - 1  # index of mask token 0 among output tokens
        output_tokens = torch.cat(heads, dim=0).unsqueeze(0).expand(sparse.shape[0], -1, -1)
        tokens = torch.cat([output_tokens, sparse], dim=1)
        if image_embeddings.shape[0] != tokens.shape[0]:
            raise ValueError(
                f"image batch {image_embeddings.shape[0]} does not match prompt batch {tokens.shape[0]}"
            )
        src = image_embeddings + dense
        pos = image_pe.expand(tokens.shape[0], -1, -1, -1)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        iou_token_out = hs[:, first_mask - 1]
        mask_tokens_out = hs[:, first_mask : first_mask + self.num_mask_tokens]
        src = src.transpose(1, 2).reshape(b, c, h, w)
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        if self.use_high_res_features:
            feat_s0, feat_s1 = high_res_features
            upscaled = act1(ln1(dc1(src) + feat_s1))
            upscaled = act2(dc2(upscaled) + feat_s0)
        else:
            upscaled = act2(dc2(act1(ln1(dc1(src)))))
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
        iou = self.iou_prediction_head(iou_token_out)
        if self.pred_obj_scores:
            object_score = self.pred_obj_score_head(hs[:, 0])
        else:
            # Without a presence head the object is always taken as present.
            object_score = 10.0 * iou.new_ones(iou.shape[0], 1)
        return masks, iou, mask_tokens_out, object_score

    def stability_scores(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """IoU between the masks thresholded at ``+delta`` and ``-delta``: ``(B, M, h, w)`` -> ``(B, M)``."""
        flat = mask_logits.flatten(-2)
        inter = (flat > self.stability_delta).sum(-1).float()
        union = (flat > -self.stability_delta).sum(-1).float()
        return torch.where(union > 0, inter / union, 1.0)

    def _pick_stable(self, masks: torch.Tensor, iou: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        best = iou[:, 1:].argmax(dim=-1)
        rows = torch.arange(masks.shape[0], device=masks.device)
        best_masks = masks[:, 1:][rows, best].unsqueeze(1)
        best_iou = iou[:, 1:][rows, best].unsqueeze(1)
        stable = self.stability_scores(masks[:, :1]) >= self.stability_thresh
        out_masks = torch.where(stable[..., None, None].expand_as(masks[:, :1]), masks[:, :1], best_masks)
        out_iou = torch.where(stable.expand_as(iou[:, :1]), iou[:, :1], best_iou)
        return out_masks, out_iou
