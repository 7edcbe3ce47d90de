"""The format an ONNX export folder has, shared by :mod:`vos.export.exporter`, which writes it, and
:mod:`vos.export.runtime`, which reads it: the manifest's name and version, the graphs with every input and
output shape, the opset, the digest that ties each graph to its config. Neither side imports the other.

Only the standard library is imported here: reading a manifest needs no torch.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OnnxExtraMissing

if TYPE_CHECKING:
    from ..model.config import ModelConfig

OPSET = 18
MANIFEST = "manifest.json"
FORMAT = "vos-onnx"
FORMAT_VERSION = 2
# Each graph carries the sha256 of the config it was exported from, so that a manifest edited to claim
# another config (another num_maskmem, another pointer encoding) is refused although its graphs are intact.
CONFIG_KEY = "vos.config_sha256"

# Dynamic axes, by the name graphs and the manifest give them; the smallest size each takes.
DYNAMIC_AXES = {"objects": 1, "frames": 1, "pointers": 0, "points": 1}



class OnnxExportError(ValueError):
    """An export that failed, an exported folder that does not hold what its manifest says, or an input a
    graph cannot take."""


def check_exportable(config: ModelConfig) -> None:
    """Refuse the model families the graphs do not cover yet (EdgeTAM, EfficientTAM)."""
    from ..model.hiera import HieraConfig

    if not isinstance(config.trunk, HieraConfig) or config.perceiver is not None or config.memory_pool is not None:
        raise ValueError(f"{config.name} ({config.family}): ONNX export covers SAM 2 / 2.1 and vos's own models "
                         "(Hiera trunks); EdgeTAM and EfficientTAM are not exported yet")


def config_digest(config: ModelConfig | dict) -> str:
    """The digest of a config, or of a config as a manifest stores it (so that a manifest written before a
    config field was added still matches its graphs)."""
    data = config if isinstance(config, dict) else config.to_dict()
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def require(module: str):
    """Import one of the ``vos[onnx]`` extra's packages, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OnnxExtraMissing(
            f"ONNX export and the ONNX runtime need the optional packages onnx, onnxscript and onnxruntime "
            f"({module} is missing: {exc}); install them with: pip install \"vos[onnx]\""
        ) from None


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a graph: ``shape`` holds sizes and names of dynamic axes."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class GraphSpec:
    """One exported graph: its file, the model method it stands for, and its inputs and outputs."""

    name: str
    stage: str
    method: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def file(self) -> str:
        return f"{self.name}.onnx"

    def to_dict(self) -> dict:
        return {"file": self.file, "stage": self.stage, "method": self.method,
                "inputs": [t.to_dict() for t in self.inputs], "outputs": [t.to_dict() for t in self.outputs]}


def graph_specs(config: ModelConfig) -> dict[str, GraphSpec]:
    """The graphs of a model with ``config``, by name, with every input and output shape."""
    s, c, m = config.image_size, config.d_model, config.mem_dim
    h = s // config.backbone_stride

    def t(name: str, *shape: int | str, dtype: str = "float32") -> TensorSpec:
        return TensorSpec(name, tuple(shape), dtype)

    high_res = (t("high_res_feats_0", 1, c // 8, 4 * h, 4 * h), t("high_res_feats_1", 1, c // 4, 2 * h, 2 * h))
    features = t("image_embed", "objects", c, h, h)
    heads = (t("low_res_masks", "objects", 1, 4 * h, 4 * h), t("high_res_masks", "objects", 1, s, s),
             t("obj_ptr", "objects", c), t("object_score_logits", "objects", 1))
    specs = [
        GraphSpec("image_encoder", "image encoder", "encode_image", (t("image", 1, 3, s, s),),
                  high_res + (t("vision_features", 1, c, h, h), t("vision_pos_enc", 1, c, h, h))),
        GraphSpec("memory_attention", "memory attention", "condition_on_memories",
                  (t("curr", "objects", h * h, c), t("curr_pos", "objects", h * h, c),
                   t("memories", "objects", "frames", m, h, h), t("time_positions", "frames", dtype="int64"),
                   t("pointers", "objects", "pointers", c), t("pointer_times", "pointers")),
                  (t("conditioned", "objects", h * h, c),)),
        GraphSpec("without_memory", "memory attention", "without_memory", (t("features", "objects", c, h, h),),
                  (t("features_without_memory", "objects", c, h, h),)),
        GraphSpec("mask_decoder", "prompt encoder + mask decoder", "predict_masks",
                  (features,) + high_res + (
                      t("point_coords", "objects", "points", 2), t("point_labels", "objects", "points", dtype="int32"),
                      t("mask_input", "objects", 1, 4 * h, 4 * h), t("has_mask_input", dtype="bool"),
                      t("multimask_output", dtype="bool")),
                  (t("masks", "objects", 4, 4 * h, 4 * h), t("iou_predictions", "objects", 4),
                   t("iou", "objects", 1)) + heads),
        GraphSpec("mask_as_output", "prompt encoder + mask decoder", "mask_as_output",
                  (features,) + high_res + (t("mask", "objects", 1, s, s),), heads),
        GraphSpec("memory_encoder", "memory encoder", "encode_memory",
                  (t("pix_feat", 1, c, h, h), t("high_res_masks", "objects", 1, s, s),
                   t("object_score_logits", "objects", 1), t("binarize", dtype="bool")),
                  (t("maskmem_features", "objects", m, h, h), t("maskmem_pos_enc", "objects", m, h, h))),
    ]
    return {g.name: g for g in specs}


def sha256(path: Path) -> str:
    """The sha256 of a file, read in blocks: a graph's, as its manifest records it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
