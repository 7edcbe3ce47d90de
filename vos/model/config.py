"""Model configurations as plain data: the eight official SAM 2 / 2.1 configs, EdgeTAM, the eight EfficientTAM
configs, and custom ones."""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from ..errors import UnknownNameError, shown
from .hiera import HieraConfig
from .memory_attention import PooledMemoryConfig
from .perceiver import PerceiverConfig
from .timm_trunk import TimmTrunkConfig
from .vit import ViTConfig


@dataclass(frozen=True)
class GeneratorDefaults:
    """The automatic mask generator's filters where they depend on the model: how its predicted IoUs and
    mask logits are calibrated. A user's explicit value always wins (see
    :func:`vos.image.mask_generator.generator_setting`).

    ``pred_iou_thresh``: keep candidates whose predicted IoU is above this. ``stability_score_thresh``: keep
    candidates whose stability (the IoU of the mask thresholded at ``±stability_score_offset``) is at least
    this. SAM 2's values are the defaults of every official checkpoint.
    """

    pred_iou_thresh: float = 0.8
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0

    def __post_init__(self) -> None:
        for name in ("pred_iou_thresh", "stability_score_thresh"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a fraction in [0, 1], got {getattr(self, name)}")
        if self.stability_score_offset <= 0.0:
            raise ValueError(f"stability_score_offset must be positive, got {self.stability_score_offset}")


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
    # Where the automatic mask generator's filters sit for this model's scores (SAM 2's for official models).
    generator: GeneratorDefaults = GeneratorDefaults()

    def __post_init__(self) -> None:
        total_stride = self.trunk.total_stride
        divisors = {"image_size": self.image_size, "d_model": self.d_model, "backbone_stride": self.backbone_stride,
                    "mem_dim": self.mem_dim, "the trunk's total stride": total_stride}
        if self.perceiver is not None:
            divisors["the perceiver's grid"] = self.perceiver.grid
        for name, value in divisors.items():
            if value < 1:
                raise ValueError(f"{name} must be positive, got {value}")
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
        """The config :meth:`to_dict` gave (read back from a checkpoint or an ONNX manifest): each field checked
        against its annotation, so that a wrong one is a ``ValueError`` naming the field and its value.

        A field the data lacks (it was stored before vos had the field) takes the value of the known config of
        the same name, so that the shipped ``vos_small`` weights get ``vos_small``'s generator defaults; the
        dataclass default otherwise."""
        if not isinstance(data, dict):
            raise ValueError(f"a model config is a mapping of fields, got {shown(data)}")
        known = _known_configs().get(data.get("name")) if isinstance(data.get("name"), str) else None
        data = {**(known.to_dict() if known is not None else {}), **data}
        for name, (value, why) in FIXED_FIELDS.items():
            stored = data.pop(name, value)
            if stored != value:
                raise ValueError(f"model config field {name} = {shown(stored)} is not implemented by vos (only "
                                 f"{value!r}: {why})")
        return _build(cls, data, "")


def _build(cls: type, data: Any, prefix: str) -> Any:
    """The config dataclass ``cls`` from plain data, every field checked against its annotation; ``prefix``
    names the enclosing field in messages (``trunk.``)."""
    if not isinstance(data, dict):
        raise ValueError(f"model config field {prefix[:-1]} = {shown(data)} is not a mapping of fields")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown and prefix:  # the enclosing field and its value: a key may be anything, even empty
        raise ValueError(f"model config field {prefix[:-1]} = {shown(data)} has unknown fields {unknown}")
    if unknown:
        raise ValueError(f"unknown model config fields: {unknown}")
    missing = [prefix + n for n in _required(cls) if n not in data]
    if missing:
        raise ValueError(f"model config field{'s' * (len(missing) > 1)} {', '.join(missing)} missing")
    hints = typing.get_type_hints(cls)
    values = {name: _field(hints[name], value, prefix + name) for name, value in data.items()}
    try:
        return cls(**values)
    except ValueError as exc:
        raise ValueError(f"{prefix[:-1]}: {exc}" if prefix else str(exc)) from None


def _required(cls: type) -> list[str]:
    missing = dataclasses.MISSING
    return [f.name for f in dataclasses.fields(cls) if f.default is missing and f.default_factory is missing]


_LARGEST_INT = 2**31 - 1  # sizes and counts: larger ones are mistakes, and would make arithmetic on them slow


def _field(kind: Any, value: Any, name: str) -> Any:
    """``value`` as the annotation ``kind`` wants it (lists as tuples, integers as floats where floats are
    wanted), or a ``ValueError`` naming the field ``name`` and the value."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) > 1:  # the trunk: the dataclass whose fields the data names fits best
            options.sort(key=lambda c: _misfit(c, value))
        return _field(options[0], value, name)
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, name + ".")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"model config field {name} = {shown(value)} is not one of {list(args)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"model config field {name} = {shown(value)} is not a list")
        if args[-1] is Ellipsis:
            args = args[:1] * len(value)
        elif len(value) != len(args):
            raise ValueError(f"model config field {name} = {shown(value)} is not a list of {len(args)}")
        return tuple(_field(a, v, f"{name}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"model config field {name} = {shown(value)} is not true or false")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _LARGEST_INT:
            raise ValueError(f"model config field {name} = {shown(value)} is not an integer from 0 to {_LARGEST_INT}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"model config field {name} = {shown(value)} is not a finite number")
        return float(value)
    elif kind is str and not isinstance(value, str):
        raise ValueError(f"model config field {name} = {shown(value)} is not a string")
    return value


def _misfit(cls: type, data: Any) -> int:
    """How many fields ``data`` names that ``cls`` lacks, plus those ``cls`` needs that it lacks."""
    if not isinstance(data, dict):
        return 0
    names = {f.name for f in dataclasses.fields(cls)}
    return len(set(data) - names) + sum(n not in data for n in _required(cls))


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
        # Its predicted IoUs stay below about 0.7 and its logits are soft (stabilities of 0.05-0.5), so SAM 2's
        # filters keep nothing; these keep 5-48 masks an image on COCO (median 21), as docs/images.md measures.
        generator=GeneratorDefaults(pred_iou_thresh=0.2, stability_score_thresh=0.2),
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


def _known_configs() -> dict[str, ModelConfig]:
    return {**OFFICIAL_CONFIGS, **EFFICIENT_CONFIGS, **VOS_CONFIGS}


def get_config(name: str) -> ModelConfig:
    """The config named ``name``: official SAM 2 (``sam2.1_hiera_tiny`` or ``sam2.1_hiera_t``), EdgeTAM
    (``edgetam``), EfficientTAM (``efficienttam_ti``, ``efficienttam_s_512x512``, ...) or vos's own."""
    key = CONFIG_ALIASES.get(name, name)
    known = _known_configs()
    if key not in known:
        raise UnknownNameError(f"unknown config {name!r}; known: {sorted(known)}")
    return known[key]


def neck_channels(trunk: HieraConfig | TimmTrunkConfig | ViTConfig) -> list[int]:
    """Backbone channels as the neck lists them: lowest resolution first."""
    return list(reversed(trunk.channels))


__all__ = ["ModelConfig", "GeneratorDefaults", "HieraConfig", "TimmTrunkConfig", "ViTConfig", "PerceiverConfig", "PooledMemoryConfig",
           "OFFICIAL_CONFIGS", "EFFICIENT_CONFIGS", "VOS_CONFIGS", "get_config", "neck_channels"]
