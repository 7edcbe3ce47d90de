"""Model configurations as plain data: the eight official SAM 2 / 2.1 configs, EdgeTAM, the eight EfficientTAM
configs, and custom ones."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import UnknownNameError
from .hiera import HieraConfig
from .memory_attention import PooledMemoryConfig
from .perceiver import PerceiverConfig
from .timm_trunk import TimmTrunkConfig
from .vit import ViTConfig


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a :class:`vos.model.sam2.SAM2Model`.

    Architecture fields come first; the version flags say how SAM 2.1 differs from 2.0; the remaining
    fields are the behaviour switches of the official yaml files (identical for all official sizes).
    """

    name: str
    trunk: HieraConfig | TimmTrunkConfig | ViTConfig
    image_size: int = 1024
    d_model: int = 256
    mem_dim: int = 64
    num_maskmem: int = 7
    backbone_stride: int = 16
    memory_attention_layers: int = 4
    memory_attention_ffn: int = 2048
    fuser_layers: int = 2
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    # EdgeTAM: memories compressed to latent tokens before memory attention (None: SAM 2's full maps).
    perceiver: PerceiverConfig | None = None
    # EfficientTAM's _1 / _2 variants: memory cross-attention over pooled memory tokens (None: every token).
    memory_pool: PooledMemoryConfig | None = None
    # The decoder adds the stride-4 and stride-8 maps while upscaling (``use_high_res_features_in_sam``);
    # EfficientTAM's one-level ViT has none.
    use_high_res_features: bool = True
    # SAM 2.1 additions (all False in 2.0).
    no_obj_embed_spatial: bool = True
    add_tpos_enc_to_obj_ptrs: bool = True
    proj_tpos_enc_in_obj_ptrs: bool = True
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    # Behaviour shared by every official config.
    sigmoid_scale_for_mem_enc: float = 20.0
    sigmoid_bias_for_mem_enc: float = -10.0
    multimask_output_in_sam: bool = True
    multimask_output_for_tracking: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    # Off in the yaml files and in official evaluation; the official builders' post-processing turns it on.
    dynamic_multimask_via_stability: bool = False
    # vos's own models (off in every official one): the decoder of a tracked frame also sees the object's
    # previous mask, through the prompt encoder's mask path (MaskTrack's prior; see vos.tracking.core.prior_logits).
    track_with_previous_mask: bool = False

    def __post_init__(self) -> None:
        total_stride = self.trunk.total_stride
        if self.image_size % total_stride:
            raise ValueError(f"image_size {self.image_size} is not divisible by the total stride {total_stride}")
        if self.image_size % self.backbone_stride:
            raise ValueError(f"image_size {self.image_size} is not divisible by backbone_stride {self.backbone_stride}")
        if self.d_model % self.mem_dim:
            raise ValueError(f"d_model {self.d_model} must be a multiple of mem_dim {self.mem_dim}")
        if self.proj_tpos_enc_in_obj_ptrs and not self.add_tpos_enc_to_obj_ptrs:
            raise ValueError("proj_tpos_enc_in_obj_ptrs needs add_tpos_enc_to_obj_ptrs")
        if self.perceiver is not None and (self.image_size // self.backbone_stride) % self.perceiver.grid:
            raise ValueError(f"the memory map ({self.image_size // self.backbone_stride} px wide) does not split "
                             f"into the perceiver's {self.perceiver.grid}x{self.perceiver.grid} windows")
        if self.use_high_res_features and len(self.trunk.channels) < 3:
            raise ValueError(f"{self.trunk.summary} gives {len(self.trunk.channels)} feature level(s): "
                             "the decoder cannot use high-resolution features")
        if self.memory_pool is not None and (self.image_size // self.backbone_stride) % self.memory_pool.kernel:
            raise ValueError(f"the memory map ({self.image_size // self.backbone_stride} px wide) does not pool "
                             f"by {self.memory_pool.kernel}x{self.memory_pool.kernel}")
        if self.memory_pool is not None and self.perceiver is not None:
            raise ValueError("memory pooling works on full memory maps, not on a perceiver's latents")

    @property
    def version(self) -> str:
        return "2.1" if self.no_obj_embed_spatial else "2.0"

    @property
    def family(self) -> str:
        """The model family, as ``vos info`` names it."""
        if self.perceiver is not None:
            return "EdgeTAM"
        if isinstance(self.trunk, ViTConfig):
            return "EfficientTAM"
        return f"SAM {self.version}"

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed, e.g. ``config.replace(image_size=512)``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        data = dict(data)
        for name, (value, why) in FIXED_FIELDS.items():
            stored = data.pop(name, value)
            if stored != value:
                raise ValueError(f"model config field {name} = {stored!r} is not implemented by vos (only {value!r}: "
                                 f"{why})")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config fields: {unknown}")
        trunk = {k: tuple(v) if isinstance(v, list) else v for k, v in data.pop("trunk").items()}
        # Each trunk config has a field no other has.
        if "model_name" in trunk:
            trunk_cls = TimmTrunkConfig
        elif "window_block_indexes" in trunk:
            trunk_cls = ViTConfig
        else:
            trunk_cls = HieraConfig
        perceiver = data.pop("perceiver", None)
        pool = data.pop("memory_pool", None)
        return cls(trunk=trunk_cls(**trunk), perceiver=None if perceiver is None else PerceiverConfig(**perceiver),
                   memory_pool=None if pool is None else PooledMemoryConfig(**pool), **data)


# Official SAM 2 settings that vos implements with one value only, so they are not config fields: a stored
# config (a checkpoint written when they were, or a config transcribed from an official yaml) may hold them
# with that value; any other value is refused rather than ignored.
FIXED_FIELDS: dict[str, tuple[Any, str]] = {
    "use_mask_input_as_output_without_sam": (
        True, "a mask prompt is taken as the frame's output without the mask decoder, see SAM2Model.mask_as_output"),
    "max_obj_ptrs_in_encoder": (
        16, "how many object pointers memory attention sees is a tracker setting: MemorySettings(max_pointers=...)"),
    "only_obj_ptrs_in_the_past_for_eval": (
        True, "whether prompted frames ahead give pointers is a tracker setting: MemorySettings(only_past_pointers=...)"),
}

HIERA_T = HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 7, 2), global_att_blocks=(5, 7, 9),
                      window_pos_embed_bkg_spatial_size=(7, 7))
HIERA_S = HieraConfig(embed_dim=96, num_heads=1, stages=(1, 2, 11, 2), global_att_blocks=(7, 10, 13),
                      window_pos_embed_bkg_spatial_size=(7, 7))
HIERA_B_PLUS = HieraConfig(embed_dim=112, num_heads=2)
HIERA_L = HieraConfig(embed_dim=144, num_heads=2, stages=(2, 6, 36, 4), global_att_blocks=(23, 33, 43),
                      window_spec=(8, 4, 16, 8), window_pos_embed_bkg_spatial_size=(7, 7))

_SAM2_0_FLAGS = dict(
    no_obj_embed_spatial=False,
    add_tpos_enc_to_obj_ptrs=False,
    proj_tpos_enc_in_obj_ptrs=False,
    use_signed_tpos_enc_to_obj_ptrs=False,
)

_SIZES = {"t": ("tiny", HIERA_T), "s": ("small", HIERA_S), "b+": ("base_plus", HIERA_B_PLUS), "l": ("large", HIERA_L)}

OFFICIAL_CONFIGS: dict[str, ModelConfig] = {}
for _short, (_long, _trunk) in _SIZES.items():
    OFFICIAL_CONFIGS[f"sam2_hiera_{_long}"] = ModelConfig(name=f"sam2_hiera_{_long}", trunk=_trunk, **_SAM2_0_FLAGS)
    OFFICIAL_CONFIGS[f"sam2.1_hiera_{_long}"] = ModelConfig(name=f"sam2.1_hiera_{_long}", trunk=_trunk)

# Short names as the official yaml files spell them (``sam2.1_hiera_b+``).
CONFIG_ALIASES: dict[str, str] = {}
for _short, (_long, _) in _SIZES.items():
    for _v in ("sam2", "sam2.1"):
        CONFIG_ALIASES[f"{_v}_hiera_{_short}"] = f"{_v}_hiera_{_long}"


# vos's own embedded model: the same architecture, shrunk to run in real time on a laptop CPU at 256 px.
VOS_CONFIGS: dict[str, ModelConfig] = {
    "vos_small": ModelConfig(
        name="vos_small",
        trunk=HieraConfig(
            embed_dim=32, num_heads=1, stages=(1, 1, 3, 1), global_att_blocks=(4,),
            window_spec=(8, 4, 8, 4), window_pos_embed_bkg_spatial_size=(8, 8),
        ),
        image_size=256,
        d_model=128,
        memory_attention_layers=2,
        memory_attention_ffn=512,
        decoder_heads=4,
        decoder_mlp_dim=512,
        track_with_previous_mask=True,
    ),
}


# The SAM 2 family's efficient branches with public checkpoints, as their official configs define them.
EFFICIENT_CONFIGS: dict[str, ModelConfig] = {
    # edgetam.yaml: RepViT-M1 trunk, 2 memory-attention layers, spatial perceiver; SAM 2.0's flags.
    "edgetam": ModelConfig(
        name="edgetam",
        trunk=TimmTrunkConfig(model_name="repvit_m1", channels=(48, 96, 192, 384)),
        memory_attention_layers=2,
        perceiver=PerceiverConfig(),
        **_SAM2_0_FLAGS,
    ),
}

# EfficientTAM (efficienttam_{ti,s}[_512x512|_1|_2].yaml): a plain ViT trunk (ViTDet, 12 blocks, windows of 14
# except blocks 2, 5, 8, 11), one-level neck, decoder without high-resolution features, SAM 2.0's flags. The
# base and 512x512 configs attend to every memory token; _1 and _2 pool memories (EfficientRoPEAttention1/2).
# Variants of one trunk share every key and shape: only the file name tells them apart (see infer_config).
_EFFICIENTTAM_TRUNKS = {"ti": ViTConfig(embed_dim=192, depth=12, num_heads=3),
                        "s": ViTConfig(embed_dim=384, depth=12, num_heads=6)}
_EFFICIENTTAM_VARIANTS: dict[str, dict[str, Any]] = {
    "": {},
    "_512x512": {"image_size": 512},
    "_1": {"memory_pool": PooledMemoryConfig(count_bias_on="scores")},
    "_2": {"memory_pool": PooledMemoryConfig(count_bias_on="keys")},
}
for _size, _trunk in _EFFICIENTTAM_TRUNKS.items():
    for _suffix, _changes in _EFFICIENTTAM_VARIANTS.items():
        _name = f"efficienttam_{_size}{_suffix}"
        EFFICIENT_CONFIGS[_name] = ModelConfig(name=_name, trunk=_trunk, use_high_res_features=False,
                                               **_changes, **_SAM2_0_FLAGS)


def get_config(name: str) -> ModelConfig:
    """The config named ``name``: official SAM 2 (``sam2.1_hiera_tiny`` or ``sam2.1_hiera_t``), EdgeTAM
    (``edgetam``), EfficientTAM (``efficienttam_ti``, ``efficienttam_s_512x512``, ...) or vos's own."""
    key = CONFIG_ALIASES.get(name, name)
    known = {**OFFICIAL_CONFIGS, **EFFICIENT_CONFIGS, **VOS_CONFIGS}
    if key not in known:
        raise UnknownNameError(f"unknown config {name!r}; known: {sorted(known)}")
    return known[key]


def neck_channels(trunk: HieraConfig | TimmTrunkConfig | ViTConfig) -> list[int]:
    """Backbone channels as the neck lists them: lowest resolution first."""
    return list(reversed(trunk.channels))


__all__ = ["ModelConfig", "HieraConfig", "TimmTrunkConfig", "ViTConfig", "PerceiverConfig", "PooledMemoryConfig",
           "OFFICIAL_CONFIGS", "EFFICIENT_CONFIGS", "VOS_CONFIGS", "get_config", "neck_channels"]
