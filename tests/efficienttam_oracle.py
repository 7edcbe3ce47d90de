"""The official EfficientTAM code (PyPI ``efficient-track-anything`` 1.0), used only as a numerical oracle.

The wheel installs a top-level ``sam2`` package (a fork of SAM 2's first, July 2024 release with the ViTDet
trunk and EfficientRoPEAttention1/2 added), so it lives in its own folder (``pip install --no-deps --target
.oracles/efficienttam efficient-track-anything==1.0``, or ``$VOS_EFFICIENTTAM_ORACLE``) and is imported
through :func:`forked_sam2.sam2_from`. The wheel ships no yaml configs: the model is assembled here from the
official classes with the settings of the official configs (yformer/EfficientTAM,
``efficienttam_{ti,s}[_512x512|_1|_2].yaml``), as the official builder would with its post-processing off.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import pytest
from forked_sam2 import ORACLES, promote_memories, sam2_from
from hydra.core.global_hydra import GlobalHydra

ORACLE_DIR = Path(os.environ.get("VOS_EFFICIENTTAM_ORACLE", ORACLES / "efficienttam"))

if not (ORACLE_DIR / "sam2" / "modeling" / "backbones" / "vitdet.py").is_file():
    pytest.skip(f"the EfficientTAM oracle (efficient-track-anything, test extra) is not installed in {ORACLE_DIR}",
                allow_module_level=True)

# Trunk width and heads of the two sizes; cross-attention class of the variants.
_TRUNKS = {"ti": (192, 3), "s": (384, 6)}
_CROSS_ATTENTION = {"": "RoPEAttention", "_1": "EfficientRoPEAttention1", "_2": "EfficientRoPEAttention2"}


@contextlib.contextmanager
def _hydra_left_alone() -> Iterator[None]:
    """The wheel's ``sam2/__init__.py`` initialises hydra unconditionally, which fails once any ``sam2`` (the
    official 1.1.0 one included) has, and would replace its config search path. Nothing here needs hydra: its
    global state is set aside for the import and put back afterwards."""
    instance = GlobalHydra.instance()
    saved, instance.hydra = instance.hydra, None
    try:
        yield
    finally:
        instance.hydra = saved


def build_efficienttam(size: str, variant: str, image_size: int, video: bool = False):
    """The official EfficientTAM model (or video predictor) ``efficienttam_{size}{variant}`` on CPU in eval mode
    at ``image_size``; ``variant`` is ``""``, ``"_1"`` or ``"_2"`` (``_512x512`` is ``""`` at 512 px)."""
    embed_dim, heads = _TRUNKS[size]
    with sam2_from(ORACLE_DIR), _hydra_left_alone():
        from sam2.modeling import sam2_base
        from sam2.modeling.backbones.image_encoder import ImageEncoder, ViTDetNeck
        from sam2.modeling.backbones.vitdet import ViT
        from sam2.modeling.memory_attention import MemoryAttention, MemoryAttentionLayer
        from sam2.modeling.memory_encoder import (
            CXBlock,
            Fuser,
            MaskDownSampler,
            MemoryEncoder,
        )
        from sam2.modeling.position_encoding import PositionEmbeddingSine
        from sam2.modeling.sam import transformer
        from sam2.sam2_video_predictor import SAM2VideoPredictor

        trunk = ViT(patch_size=16, embed_dim=embed_dim, depth=12, num_heads=heads, mlp_ratio=4.0, qkv_bias=True,
                    drop_path_rate=0.0, use_rel_pos=False, window_size=14,
                    window_block_indexes=[0, 1, 3, 4, 6, 7, 9, 10])
        neck = ViTDetNeck(PositionEmbeddingSine(num_pos_feats=256, normalize=True, scale=None, temperature=10000),
                          d_model=256, backbone_channel_list=[embed_dim], neck_norm="LN")
        rope = dict(rope_theta=10000.0, feat_sizes=[32, 32], embedding_dim=256, num_heads=1, downsample_rate=1,
                    dropout=0.1)
        cross = getattr(transformer, _CROSS_ATTENTION[variant])(rope_k_repeat=True, kv_in_dim=64, **rope)
        layer = MemoryAttentionLayer(activation="relu", cross_attention=cross, d_model=256, dim_feedforward=2048,
                                     dropout=0.1, pos_enc_at_attn=False, pos_enc_at_cross_attn_keys=True,
                                     pos_enc_at_cross_attn_queries=False,
                                     self_attention=transformer.RoPEAttention(**rope))
        memory_encoder = MemoryEncoder(
            out_dim=64,
            position_encoding=PositionEmbeddingSine(num_pos_feats=64, normalize=True, scale=None, temperature=10000),
            mask_downsampler=MaskDownSampler(kernel_size=3, stride=2, padding=1),
            fuser=Fuser(CXBlock(dim=256, kernel_size=7, padding=3, layer_scale_init_value=1e-6, use_dwconv=True),
                        num_layers=2),
        )
        cls = SAM2VideoPredictor if video else sam2_base.SAM2Base
        model = cls(
            image_encoder=ImageEncoder(trunk=trunk, neck=neck, scalp=0),
            memory_attention=MemoryAttention(d_model=256, pos_enc_at_input=True, layer=layer, num_layers=4),
            memory_encoder=memory_encoder,
            num_maskmem=7, image_size=image_size, sigmoid_scale_for_mem_enc=20.0, sigmoid_bias_for_mem_enc=-10.0,
            use_mask_input_as_output_without_sam=True, directly_add_no_mem_embed=True,
            use_high_res_features_in_sam=False, multimask_output_in_sam=True, iou_prediction_use_sigmoid=True,
            use_obj_ptrs_in_encoder=True, add_tpos_enc_to_obj_ptrs=False, only_obj_ptrs_in_the_past_for_eval=True,
            pred_obj_scores=True, pred_obj_scores_mlp=True, fixed_no_obj_ptr=True, multimask_output_for_tracking=True,
            use_multimask_token_for_obj_ptr=True, multimask_min_pt_num=0, multimask_max_pt_num=1,
            use_mlp_for_obj_ptr_proj=True, compile_image_encoder=False,
        )
    promote_memories(model)
    return model.eval()
