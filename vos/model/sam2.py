"""The SAM 2 model: its modules under the official parameter names, and the per-frame computations.

The model holds no per-video state. Predictors and trackers decide which memories to use and call the
methods of :class:`vos.model.interface.TrackingModel`:

* :meth:`SAM2Model.encode_image` once per frame,
* :meth:`SAM2Model.condition_on_memories` (or :meth:`SAM2Model.without_memory` on a prompted first frame),
* :meth:`SAM2Model.predict_masks` / :meth:`SAM2Model.mask_as_output` for the decoder heads,
* :meth:`SAM2Model.encode_memory` to turn the result into a memory for later frames.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import MLP
from .config import ModelConfig, neck_channels
from .hiera import Hiera, HieraConfig
from .image_encoder import FpnNeck, ImageEncoder, ImageFeatures
from .interface import HeadOutput, TrackingModel, pointer_times
from .kernels import Linear
from .mask_decoder import DecoderOutput, MaskDecoder
from .memory_attention import MemoryAttention
from .memory_encoder import MemoryEncoder
from .perceiver import PerceiverResampler
from .position_encoding import sine_1d
from .prompt_encoder import PromptEncoder
from .timm_trunk import TimmTrunk
from .transformer import TwoWayTransformer
from .vit import ViTConfig, ViTDetNeck, ViTTrunk

# Logit given to every pixel of an object judged absent.
NO_OBJ_SCORE = -1024.0


def resize_mask_prompt(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Mask logits ``(B, 1, H', W')`` at the prompt encoder's ``size`` (bilinear, antialiased, as SAM 2 resizes
    them); unchanged when already there."""
    if tuple(mask.shape[-2:]) == tuple(size):
        return mask
    return F.interpolate(mask.float(), size=size, mode="bilinear", align_corners=False, antialias=True)


def _trunc_normal_parameter(*shape: int) -> nn.Parameter:
    p = nn.Parameter(torch.zeros(*shape))
    nn.init.trunc_normal_(p, std=0.02)
    return p


class SAM2Model(nn.Module, TrackingModel):
    """SAM 2 / 2.1, EdgeTAM and EfficientTAM with the official module trees, so official state dicts load with
    ``strict=True``.

    EdgeTAM differs only in modules chosen by its config: a timm trunk, and a spatial perceiver that
    compresses each memory into latent tokens, which memory attention's keys rotate on their own grid.
    EfficientTAM likewise: a plain ViT trunk with a one-level neck, a decoder without high-resolution
    features, and (its _1/_2 variants) memory cross-attention over pooled memory tokens.

    The per-frame methods are those of :class:`vos.model.interface.TrackingModel`; the model computes under
    ``torch.autocast``, so the trackers' fast precisions apply to it.
    """

    supports_autocast = True
    batches_images = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c, m = config.d_model, config.mem_dim
        self.hidden_dim, self.mem_dim = c, m
        self.image_size = config.image_size
        self.num_maskmem = config.num_maskmem
        feat = config.image_size // config.backbone_stride

        self.maskmem_tpos_enc = _trunc_normal_parameter(config.num_maskmem, 1, 1, m)
        self.no_mem_embed = _trunc_normal_parameter(1, 1, c)
        self.no_mem_pos_enc = _trunc_normal_parameter(1, 1, c)
        self.no_obj_ptr = _trunc_normal_parameter(1, c)
        if config.no_obj_embed_spatial:
            self.no_obj_embed_spatial = _trunc_normal_parameter(1, m)
        else:
            self.no_obj_embed_spatial = None

        if isinstance(config.trunk, ViTConfig):
            # One level, nothing to drop (the official scalp is 0).
            self.image_encoder = ImageEncoder(ViTTrunk(config.trunk), ViTDetNeck(c, config.trunk.embed_dim), scalp=0)
        else:
            trunk = Hiera(config.trunk) if isinstance(config.trunk, HieraConfig) else TimmTrunk(config.trunk)
            self.image_encoder = ImageEncoder(trunk, FpnNeck(c, neck_channels(config.trunk)))
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        perceiver = config.perceiver
        self.memory_attention = MemoryAttention(
            c,
            num_layers=config.memory_attention_layers,
            mem_dim=m,
            dim_feedforward=config.memory_attention_ffn,
            feat_sizes=(feat, feat),
            k_grid=None if perceiver is None else perceiver.grid,
            k_unrotated=0 if perceiver is None else perceiver.num_latents,
            pool=config.memory_pool,
        )
        self.memory_encoder = MemoryEncoder(in_dim=c, out_dim=m, fuser_layers=config.fuser_layers)
        self.sam_prompt_encoder = PromptEncoder(
            embed_dim=c, image_embedding_size=(feat, feat), input_image_size=(config.image_size,) * 2
        )
        self.sam_mask_decoder = MaskDecoder(
            transformer_dim=c,
            transformer=TwoWayTransformer(config.decoder_depth, c, config.decoder_heads, config.decoder_mlp_dim),
            iou_head_hidden_dim=c,
            use_high_res_features=config.use_high_res_features,
            iou_prediction_use_sigmoid=True,
            pred_obj_scores=True,
            pred_obj_scores_mlp=True,
            use_multimask_token_for_obj_ptr=True,
            dynamic_multimask_via_stability=config.dynamic_multimask_via_stability,
        )
        self.obj_ptr_proj = MLP(c, c, c, 3)
        self.obj_ptr_tpos_proj = Linear(c, m) if config.proj_tpos_enc_in_obj_ptrs else nn.Identity()
        self.spatial_perceiver = None if perceiver is None else PerceiverResampler(m, perceiver)

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    # ------------------------------------------------------------------ image
    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        """``(B, 3, S, S)`` normalised images -> features; the two high-resolution levels (when the decoder uses
        them) are already projected to the decoder's ``C/8`` and ``C/4`` channels, as the decoder consumes them."""
        out = self.image_encoder(images)
        decoder = self.sam_mask_decoder
        if decoder.use_high_res_features:
            out.backbone_fpn[0] = decoder.conv_s0(out.backbone_fpn[0])
            out.backbone_fpn[1] = decoder.conv_s1(out.backbone_fpn[1])
        return out

    # ------------------------------------------------------------------ memory attention
    def without_memory(self, features: torch.Tensor) -> torch.Tensor:
        """Features ``(B, C, h, w)`` of a frame prompted before any memory exists: plus ``no_mem_embed``."""
        b, c, h, w = features.shape
        # Computed token-major (hw, B, C) as the official model does, so the decoder sees the same layout.
        tokens = features.flatten(2).permute(2, 0, 1) + self.no_mem_embed
        return tokens.permute(1, 2, 0).view(b, c, h, w)

    def condition_on_memory(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        """``curr, curr_pos (B, N, C)``; ``memory, memory_pos (B, M, mem_dim)`` whose last
        ``num_obj_ptr_tokens`` entries are object-pointer tokens -> ``(B, N, C)``."""
        return self.memory_attention(curr, curr_pos, memory, memory_pos, num_obj_ptr_tokens)

    def condition_on_memories(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memories: torch.Tensor,
        time_positions: torch.Tensor,
        pointers: torch.Tensor | None = None,
        pointer_times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Condition ``curr, curr_pos (B, N, C)`` on memories as the memory bank selects them.

        Args:
            memories: ``(B, F, mem_dim, ...)`` the ``F`` memory frames of each object, each as
                :meth:`encode_memory` returned it.
            time_positions: ``(F,)`` integer temporal slot of each frame (0 = prompted, see
                :meth:`memory_time_encoding`).
            pointers: ``(B, P, C)`` object pointers, or ``None``.
            pointer_times: ``(P,)`` float temporal distance of each pointer's frame, already divided by the
                pointer budget minus one (:func:`vos.model.interface.pointer_times`).
        Returns:
            ``(B, N, C)``. Only tensor operations on the inputs' shapes, so one exported graph serves any
            number of objects, frames and pointers.
        """
        b, m = memories.shape[0], self.mem_dim
        spatial_pos = self.memory_position(memories[0, 0])  # (T, m)
        time_pos = self.maskmem_tpos_enc[self.num_maskmem - 1 - time_positions].reshape(-1, 1, m)  # (F, 1, m)
        memory_pos = (spatial_pos[None] + time_pos).reshape(-1, m)[None].expand(b, -1, -1)
        memory = memories.flatten(3).transpose(2, 3).reshape(b, -1, m)
        num_ptr = 0
        if pointers is not None:
            tokens, token_pos = self._pointer_tokens(pointers, pointer_times)
            memory, memory_pos, num_ptr = torch.cat([memory, tokens], 1), torch.cat([memory_pos, token_pos], 1), tokens.shape[1]
        return self.condition_on_memory(curr, curr_pos, memory, memory_pos, num_ptr)

    def memory_position(self, features: torch.Tensor) -> torch.Tensor:
        """Position ``(T, mem_dim)`` of the ``T`` tokens of one memory ``features (mem_dim, ...)`` as
        :meth:`encode_memory` returns it: the map's sine encoding, or the perceiver's token positions."""
        if self.spatial_perceiver is not None:
            return self.spatial_perceiver.position(self.device)
        h, w = features.shape[-2:]
        return self.memory_encoder.position_encoding.encode(h, w, self.device).flatten(1).t()

    def memory_time_encoding(self, t_pos: int) -> torch.Tensor:
        """Temporal encoding ``(1, 1, mem_dim)`` of a memory ``t_pos`` steps into the FIFO (0 = prompted)."""
        return self.maskmem_tpos_enc[self.num_maskmem - t_pos - 1].reshape(1, 1, -1)

    def object_pointer_tokens(
        self, pointers: torch.Tensor, positions: torch.Tensor, max_pointers: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Split pointers into memory tokens with their temporal encodings.

        Args:
            pointers: ``(B, P, C)`` object pointers.
            positions: ``(P,)`` temporal distance of each pointer's frame (signed in 2.1).
            max_pointers: the pointer budget; distances are normalised by ``max_pointers - 1``.
        Returns:
            tokens and position encodings, both ``(B, P * C / mem_dim, mem_dim)``.
        """
        return self._pointer_tokens(pointers, pointer_times(positions.to(self.device), max_pointers))

    def _pointer_tokens(self, pointers: torch.Tensor, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`object_pointer_tokens` of pointers at normalised temporal distances ``times (P,)``."""
        b, p, c = pointers.shape
        m = self.mem_dim
        if self.config.add_tpos_enc_to_obj_ptrs:
            dim = c if self.config.proj_tpos_enc_in_obj_ptrs else m
            pos = self.obj_ptr_tpos_proj(sine_1d(times, dim))
        else:
            pos = pointers.new_zeros(p, m)
        split = c // m
        tokens = pointers.reshape(b, p * split, m)
        pos = pos.repeat_interleave(split, dim=0).unsqueeze(0).expand(b, -1, -1)
        return tokens, pos

    # ------------------------------------------------------------------ heads
    def predict_masks(
        self,
        features: torch.Tensor,
        high_res_features: list[torch.Tensor],
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> HeadOutput:
        """Run the prompt encoder and mask decoder on memory-conditioned features.

        Args:
            features: ``(B, C, h, w)``.
            high_res_features: ``[(B, C/8, 4h, 4w), (B, C/4, 2h, 2w)]``; empty for a decoder without them.
            point_coords: ``(B, N, 2)`` in model-input pixels; ``point_labels (B, N)``. A box is two points
                labelled 2 and 3. With no points, a single padding point is used.
            mask_inputs: ``(B, 1, H', W')`` mask logits, resized to the prompt size when needed.
        """
        b = features.shape[0]
        if point_coords is None:
            point_coords = features.new_zeros(b, 1, 2)
            point_labels = -torch.ones(b, 1, dtype=torch.int32, device=features.device)
        out = self.decode(features, high_res_features, point_coords, point_labels, mask_inputs, multimask_output)
        present = out.object_score > 0  # (B, 1)
        # Hard gate: an absent object gets an empty mask, for the output and for the memory alike.
        low_multi = torch.where(present[:, :, None, None], out.masks, NO_OBJ_SCORE).float()
        high_multi = F.interpolate(low_multi, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
        token = out.tokens[:, 0]
        if multimask_output:
            best = out.iou.argmax(dim=-1)
            rows = torch.arange(b, device=features.device)
            low, high = low_multi[rows, best].unsqueeze(1), high_multi[rows, best].unsqueeze(1)
            if out.tokens.shape[1] > 1:
                token = out.tokens[rows, best]
        else:
            low, high = low_multi, high_multi
        obj_ptr = self._gate_pointer(self.obj_ptr_proj(token), present.float())
        return HeadOutput(low_multi, high_multi, out.iou, low, high, obj_ptr, out.object_score)

    def decode(
        self,
        features: torch.Tensor,
        high_res_features: list[torch.Tensor],
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> DecoderOutput:
        """The prompt encoder and mask decoder alone: no presence gating, no upscaling, no pointer (what SAM's
        image predictor uses).

        Args:
            features: ``(B, C, h, w)``; ``high_res_features`` ``[(B or 1, C/8, 4h, 4w), (B or 1, C/4, 2h, 2w)]``.
            point_coords: ``(B, N, 2)`` in model-input pixels, ``point_labels (B, N)``; ``None``: no sparse
                prompt at all (unlike :meth:`predict_masks`, which then adds a padding point as SAM 2 does).
            mask_inputs: ``(B, 1, H', W')`` mask logits, resized to the prompt size when needed.
        Returns:
            ``masks (B, M, 4h, 4w)`` logits, ``iou (B, M)``, the mask tokens and ``object_score (B, 1)``.
        """
        prompt = self.sam_prompt_encoder
        if mask_inputs is not None:
            mask_inputs = resize_mask_prompt(mask_inputs, prompt.mask_input_size)
        points = None if point_coords is None else (point_coords, point_labels)
        sparse, dense = prompt(points, None, mask_inputs)
        return self.sam_mask_decoder(
            features, prompt.get_dense_pe(), sparse, dense, multimask_output, high_res_features=high_res_features
        )

    def mask_as_output(
        self, features: torch.Tensor, high_res_features: list[torch.Tensor], mask: torch.Tensor
    ) -> HeadOutput:
        """Take a mask prompt ``(B, 1, S, S)`` as the frame's output directly (logits ``±10``); the
        decoder still runs on the downsampled mask to produce the object pointer."""
        mask = mask.float()
        high = mask * 20.0 - 10.0
        low = F.interpolate(
            high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear", align_corners=False, antialias=True
        )
        ious = mask.new_ones(mask.shape[0], 1)
        heads = self.predict_masks(features, high_res_features, mask_inputs=self.mask_downsample(mask))
        present = (mask.flatten(1) > 0).any(dim=1, keepdim=True).float()
        object_score = present * 20.0 - 10.0
        obj_ptr = self._gate_pointer(heads.obj_ptr, present)
        return HeadOutput(low, high, ious, low, high, obj_ptr, object_score)

    def _gate_pointer(self, obj_ptr: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Replace the pointer of an absent object by the learned ``no_obj_ptr``. ``present (B, 1)`` in {0, 1}."""
        return present * obj_ptr + (1 - present) * self.no_obj_ptr

    # ------------------------------------------------------------------ memory encoder
    def encode_memory(
        self,
        pix_feat: torch.Tensor,
        high_res_mask_logits: torch.Tensor,
        object_score: torch.Tensor,
        binarize: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a frame into memory.

        Args:
            pix_feat: ``(B, C, h, w)`` the frame's stride-16 backbone features, not memory-conditioned; batch 1
                when all masks are of one frame (the features are then projected once for all of them).
            high_res_mask_logits: ``(B, 1, S, S)`` the chosen mask.
            object_score: ``(B, 1)`` presence logits.
            binarize: threshold the mask instead of a sigmoid (for masks from clicks, when enabled).
        Returns:
            ``features (B, mem_dim, h, w)`` and ``pos_enc (B, mem_dim, h, w)``; with a perceiver (EdgeTAM)
            ``(B, mem_dim, T)`` latent tokens and their positions instead.
        """
        mask = (high_res_mask_logits > 0).float() if binarize else torch.sigmoid(high_res_mask_logits)
        return self._memory_from_mask(pix_feat, mask, object_score)

    def _memory_from_mask(
        self, pix_feat: torch.Tensor, mask: torch.Tensor, object_score: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`encode_memory` of a mask already squashed into ``[0, 1]``."""
        mask = mask * self.config.sigmoid_scale_for_mem_enc + self.config.sigmoid_bias_for_mem_enc
        # The official token layout reaches the convolutions as plain NCHW; channels-last input takes
        # another kernel that rounds differently, and memories are stored in bfloat16, where that shows.
        features, pos = self.memory_encoder(pix_feat.contiguous(), mask)
        if self.no_obj_embed_spatial is not None:
            absent = 1.0 - (object_score > 0).float()
            features = features + absent[:, :, None, None] * self.no_obj_embed_spatial[:, :, None, None]
        if self.spatial_perceiver is not None:
            features = self.spatial_perceiver(features, pos)
            pos = self.memory_position(features[0]).t().expand_as(features)
        return features, pos
