"""A model exported by ``vos export`` (:mod:`vos.export.exporter`), run on ONNX Runtime behind the model's
per-frame methods. Reads the folder as :mod:`vos.export.format` defines it; imports nothing of the exporter.

:class:`OnnxModel` implements :class:`vos.model.interface.TrackingModel`, the per-frame methods the trackers
call (``encode_image``, ``without_memory``, ``condition_on_memories``, ``predict_masks``, ``mask_as_output``,
``encode_memory``), each one graph run on the CPU execution provider,
so ``VideoPredictor``, ``LiveTracker`` and the command line's trackers run on it unchanged, through the same
memory bank and the same per-frame decisions. Tensors go in and come out as PyTorch tensors, on the CPU,
in float32.

Loading checks the folder against the manifest and the manifest against the config it claims (every graph
present, unchanged since the export, with the inputs and outputs that config implies); every run checks
its inputs against the graph's shapes. Either failure is an :class:`OnnxExportError` naming the file and
input.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import shown
from ..model.config import ModelConfig
from ..model.image_encoder import ImageFeatures
from ..model.interface import HeadOutput, TrackingModel
from ..model.position_encoding import SinePositionEncoding
from ..model.sam2 import resize_mask_prompt
from .format import (
    CONFIG_KEY,
    DYNAMIC_AXES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    GraphSpec,
    OnnxExportError,
    TensorSpec,
    check_exportable,
    config_digest,
    graph_specs,
    require,
    sha256,
)

_NUMPY_DTYPES = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "bool": np.bool_}
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool"}


@dataclass(frozen=True)
class Manifest:
    """An export folder's manifest, checked against itself: ``config`` is the model it claims, ``graphs`` each
    graph's entry, with the inputs and outputs that config implies and the file's ``sha256``; ``data`` the
    whole JSON object."""

    path: Path
    data: dict
    config: ModelConfig
    graphs: dict[str, dict]


def read_manifest(folder: str | os.PathLike) -> Manifest:
    """The manifest of an export folder, checked for its format, its config and its graphs' entries (the graph
    files themselves are :class:`OnnxModel`'s to check). Any fault is an :class:`OnnxExportError` naming the
    manifest and the field."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (an ONNX export is a folder: vos export MODEL --onnx DIR)")
    if not path.is_file():
        raise OnnxExportError(f"{path} is missing: {folder} is not a complete ONNX export (an export writes its "
                              "manifest last; run vos export again)")
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8 text, nested beyond Python's stack
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise OnnxExportError(f"{path}: not valid JSON ({reason})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise OnnxExportError(f"{path}: not a vos ONNX manifest (format {FORMAT!r} expected)")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise OnnxExportError(f"{path}: format version {shown(manifest.get('format_version'))}; this vos reads "
                              f"version {FORMAT_VERSION} (export the model again with this vos)")
    if "config" not in manifest:
        raise OnnxExportError(f"{path}: its model config is missing (field 'config')")
    try:
        config = ModelConfig.from_dict(manifest["config"])
    except ValueError as exc:
        raise OnnxExportError(f"{path}: its model config cannot be read: {exc}") from None
    try:
        check_exportable(config)
    except ValueError as exc:
        raise OnnxExportError(f"{path}: {exc}") from None
    if manifest.get("image_size") != config.image_size:
        raise OnnxExportError(f"{path}: image_size {shown(manifest.get('image_size'))} differs from its config's "
                              f"{config.image_size}")
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict):
        raise OnnxExportError(f"{path}: field 'graphs' is {shown(graphs)}, not the graphs of the export")
    for name, spec in graph_specs(config).items():
        entry = graphs.get(name)
        extra = {k: entry.get(k) for k in ("sha256", "max_abs_diff_vs_torch")} if isinstance(entry, dict) else {}
        if entry != {**spec.to_dict(), **extra}:
            raise OnnxExportError(f"{path}: graph {name!r} is {_describe(entry)}, but a {_model_name(config)} takes "
                                  f"{_describe(spec.to_dict())}")
        if not (isinstance(extra["sha256"], str) and re.fullmatch(r"[0-9a-f]{64}", extra["sha256"])):
            raise OnnxExportError(f"{path}: graph {name!r} has sha256 {shown(extra['sha256'])}, not a SHA-256 digest")
    return Manifest(path, manifest, config, graphs)


class OnnxModel(TrackingModel):
    """The per-frame methods of :class:`vos.model.interface.TrackingModel`, on the graphs of an ONNX export
    folder. It computes in float32 (``supports_autocast`` is ``False``).

    Args:
        folder: written by ``vos export MODEL --onnx DIR`` (:func:`vos.export.exporter.export_model`).
        threads: ONNX Runtime's intra-op threads per graph (default: PyTorch's, ``torch.get_num_threads()``, which
            the command line sets from the cores free at start-up: one count for both runtimes' work).
        check_files: verify each graph's sha256 against the manifest (reads every file once).
    """

    supports_autocast = False
    batches_images = False  # the exported image encoder's graph has batch 1

    def __init__(self, folder: str | os.PathLike, threads: int | None = None, check_files: bool = True) -> None:
        ort = require("onnxruntime")
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.config = self.manifest.config
        self.specs = graph_specs(self.config)
        self._pos = SinePositionEncoding(self.config.d_model)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads or torch.get_num_threads()
        # By default ONNX Runtime's threads spin after each run, taking the cores from the PyTorch work between
        # graphs (decoding, resizing, the tracker's bookkeeping): 6.4 fps instead of 19.7 for the embedded model
        # on 2 cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        where = self.manifest.path
        self.sessions = {}
        for name, spec in self.specs.items():
            path = self.folder / spec.file
            if not path.is_file():
                raise OnnxExportError(f"{path} is missing from the export (the manifest lists it)")
            if check_files and sha256(path) != self.manifest.graphs[name]["sha256"]:
                raise OnnxExportError(f"{path} is not the file this export wrote (its sha256 differs from the "
                                      "manifest's): export the model again")
            try:
                session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # ONNX Runtime raises its own types for unreadable graphs
                raise OnnxExportError(f"{path}: ONNX Runtime cannot load it: {exc}") from None
            _check_session(session, spec, path, self._model_name)
            if session.get_modelmeta().custom_metadata_map.get(CONFIG_KEY) != config_digest(self.manifest.data["config"]):
                raise OnnxExportError(f"{path} was exported from another model config than the one {where} claims "
                                      f"({self._model_name}): export the model again")
            self.sessions[name] = session

    # ------------------------------------------------------------------ what the trackers read
    @property
    def _model_name(self) -> str:
        return _model_name(self.config)

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def hidden_dim(self) -> int:
        return self.config.d_model

    @property
    def mem_dim(self) -> int:
        return self.config.mem_dim

    @property
    def num_maskmem(self) -> int:
        return self.config.num_maskmem

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def eval(self) -> "OnnxModel":
        return self

    def __repr__(self) -> str:
        return f"OnnxModel({str(self.folder)!r}: {self._model_name})"

    # ------------------------------------------------------------------ the per-frame methods
    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        """As :meth:`TrackingModel.encode_image`, for one image ``(1, 3, S, S)``."""
        hr0, hr1, vision, pos = self._run("image_encoder", image=images)
        # The high-resolution levels' position encodings depend on their size only; the trackers read none.
        pos0, pos1 = (self._pos(x) for x in (hr0, hr1))
        return ImageFeatures(backbone_fpn=[hr0, hr1, vision], vision_pos_enc=[pos0, pos1, pos])

    def without_memory(self, features: torch.Tensor) -> torch.Tensor:
        return self._run("without_memory", features=features)[0]

    def condition_on_memories(
        self,
        curr: torch.Tensor,
        curr_pos: torch.Tensor,
        memories: torch.Tensor,
        time_positions: torch.Tensor,
        pointers: torch.Tensor | None = None,
        pointer_times: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """As :meth:`TrackingModel.condition_on_memories`."""
        slots = time_positions.cpu()
        if slots.numel() and (slots.min() < 0 or slots.max() >= self.num_maskmem):
            raise OnnxExportError(f"memory_attention.onnx: input 'time_positions' holds {slots.tolist()}; the model "
                                  f"has temporal slots 0-{self.num_maskmem - 1}")
        if pointers is None:
            pointers, pointer_times = curr.new_zeros(curr.shape[0], 0, self.hidden_dim), curr.new_zeros(0)
        return self._run("memory_attention", curr=curr, curr_pos=curr_pos, memories=memories,
                         time_positions=time_positions, pointers=pointers, pointer_times=pointer_times)[0]

    def predict_masks(
        self,
        features: torch.Tensor,
        high_res_features: list[torch.Tensor],
        point_coords: torch.Tensor | None = None,
        point_labels: torch.Tensor | None = None,
        mask_inputs: torch.Tensor | None = None,
        multimask_output: bool = False,
    ) -> HeadOutput:
        """As :meth:`TrackingModel.predict_masks`."""
        b = features.shape[0]
        if point_coords is None:
            point_coords = features.new_zeros(b, 1, 2)
            point_labels = -torch.ones(b, 1, dtype=torch.int32)
        size = (4 * features.shape[-2], 4 * features.shape[-1])
        if mask_inputs is None:
            mask_input, has_mask = features.new_zeros(b, 1, *size), False
        else:
            mask_input, has_mask = resize_mask_prompt(mask_inputs, size), True
        masks, iou_all, iou, low, high, obj_ptr, score = self._run(
            "mask_decoder", image_embed=features, **self._high_res(high_res_features), point_coords=point_coords,
            point_labels=point_labels, mask_input=mask_input, has_mask_input=torch.tensor(has_mask),
            multimask_output=torch.tensor(multimask_output),
        )
        if not multimask_output:
            return HeadOutput(low, high, iou, low, high, obj_ptr, score)
        low_multi = masks[:, 1:]
        high_multi = F.interpolate(low_multi, size=(self.image_size,) * 2, mode="bilinear", align_corners=False)
        return HeadOutput(low_multi, high_multi, iou_all[:, 1:], low, high, obj_ptr, score)

    def mask_as_output(self, features: torch.Tensor, high_res_features: list[torch.Tensor], mask: torch.Tensor) -> HeadOutput:
        """As :meth:`TrackingModel.mask_as_output`."""
        low, high, obj_ptr, score = self._run("mask_as_output", image_embed=features,
                                              **self._high_res(high_res_features), mask=mask.float())
        return HeadOutput(low, high, mask.new_ones(mask.shape[0], 1), low, high, obj_ptr, score)

    def encode_memory(
        self, pix_feat: torch.Tensor, high_res_mask_logits: torch.Tensor, object_score: torch.Tensor, binarize: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`TrackingModel.encode_memory`, for masks of one frame (``pix_feat`` with batch 1)."""
        features, pos = self._run("memory_encoder", pix_feat=pix_feat, high_res_masks=high_res_mask_logits,
                                  object_score_logits=object_score, binarize=torch.tensor(binarize))
        return features, pos

    # ------------------------------------------------------------------ running a graph
    def _high_res(self, levels: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The decoder's high-resolution inputs: the frame's own, batch 1 (the trackers pass them expanded to
        every object)."""
        out = {}
        for i, x in enumerate(levels):
            if x.shape[0] > 1 and x.stride(0) != 0:
                raise OnnxExportError(f"mask_decoder.onnx: input 'high_res_feats_{i}' takes one frame's features "
                                      f"(batch 1, broadcast over objects), not a batch of {x.shape[0]} different ones")
            out[f"high_res_feats_{i}"] = x[:1]
        return out

    def _run(self, name: str, **inputs: torch.Tensor) -> list[torch.Tensor]:
        spec = self.specs[name]
        feed = {}
        sizes: dict[str, tuple[int, str]] = {}
        for t in spec.inputs:
            x = inputs[t.name].detach()
            if x.device.type != "cpu":
                x = x.cpu()
            if x.is_floating_point() and t.dtype != "float32":
                raise OnnxExportError(f"{spec.file}: input {t.name!r} takes {t.dtype} values, not {x.dtype}")
            array = np.asarray(x.numpy(), dtype=_NUMPY_DTYPES[t.dtype], order="C")
            _check_input(spec, t, array.shape, sizes, self._model_name)
            feed[t.name] = array
        return [torch.from_numpy(a) for a in self.sessions[name].run(None, feed)]


def _check_input(spec: GraphSpec, t: TensorSpec, shape: tuple[int, ...], sizes: dict, model: str) -> None:
    """An input's shape against the graph's: fixed sizes equal, each dynamic axis one size in all inputs."""
    ok = len(shape) == len(t.shape)
    for got, want in zip(shape, t.shape) if ok else ():
        if isinstance(want, int):
            ok = ok and got == want
        elif got < DYNAMIC_AXES[want]:
            raise OnnxExportError(f"{spec.file}: input {t.name!r} has {got} {want}; the graph takes at least "
                                  f"{DYNAMIC_AXES[want]}")
        elif want not in sizes:
            sizes[want] = (got, t.name)
        elif sizes[want][0] != got:
            raise OnnxExportError(f"{spec.file}: input {t.name!r} has {got} {want}, input {sizes[want][1]!r} "
                                  f"{sizes[want][0]}")
    if not ok:
        raise OnnxExportError(f"{spec.file}: input {t.name!r} is {tuple(shape)}; the export ({model}) takes "
                              f"{_shape(t.shape)}")


def _check_session(session, spec: GraphSpec, path: Path, model: str) -> None:
    """The graph's own inputs and outputs against the spec: names, element types, fixed sizes."""
    for kind, have, want in (("input", session.get_inputs(), spec.inputs), ("output", session.get_outputs(), spec.outputs)):
        if [a.name for a in have] != [t.name for t in want]:
            raise OnnxExportError(f"{path}: its {kind}s are {[a.name for a in have]}; a {model} export's are "
                                  f"{[t.name for t in want]}")
        for a, t in zip(have, want):
            fixed = [d if isinstance(d, int) else None for d in a.shape]
            expected = [d if isinstance(d, int) else None for d in t.shape]
            if _ORT_DTYPES.get(a.type) != t.dtype or fixed != expected:
                raise OnnxExportError(f"{path}: {kind} {a.name!r} is {a.type} {_shape(a.shape)}; a {model} export's is "
                                      f"{t.dtype} {_shape(t.shape)} (the graph is not the one the manifest describes)")


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _describe(entry) -> str:
    """A graph's entry in a message: its file, inputs and outputs; an entry not of that form as it is."""
    if not entry:
        return "missing"
    try:
        inputs = ", ".join(f"{i['name']} {_shape(i['shape'])}" for i in entry.get("inputs", []))
        outputs = ", ".join(f"{o['name']} {_shape(o['shape'])}" for o in entry.get("outputs", []))
    except (AttributeError, KeyError, TypeError):  # not a mapping, or lists of something else
        return shown(entry)
    return f"{entry.get('file')} with inputs {inputs} and outputs {outputs}"


def _model_name(config: ModelConfig) -> str:
    return f"{config.name} at {config.image_size} px"
