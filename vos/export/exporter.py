"""Export of a model to ONNX: one graph per per-frame method the inference core calls, and a manifest.

``image_encoder.onnx`` (:meth:`SAM2Model.encode_image`), ``memory_attention.onnx``
(:meth:`SAM2Model.condition_on_memories`, with ``without_memory.onnx`` for a frame prompted before any
memory exists), ``mask_decoder.onnx`` (prompt encoder and mask decoder, :meth:`SAM2Model.predict_masks`,
with ``mask_as_output.onnx`` for a mask prompt taken as the frame's output) and ``memory_encoder.onnx``
(:meth:`SAM2Model.encode_memory`). The number of objects, memory frames, object pointers and points are
dynamic axes; choices the PyTorch methods make in Python (several candidate masks or one, a mask input or
none, a binarised mask) are boolean inputs, decided by tensor operations in the graph. ``manifest.json``
holds the model config, the opset, each graph's inputs and outputs with their shapes, its sha256, and
how far ONNX Runtime's outputs were from PyTorch's on the export's own check. :mod:`vos.export.runtime` runs
the folder behind the same methods, so the trackers run on it unchanged.

torch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``, the default) traces the very PyTorch
code the trackers run, with oneDNN's packed kernels off (plain ``F.linear``); RoPE is real-valued (cos/sin
products) throughout, so nothing complex reaches the graph.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from streams.files import atomic_write, new_folder

from ..model.config import ModelConfig
from ..model.kernels import use_packed_kernels
from ..model.sam2 import NO_OBJ_SCORE, SAM2Model
from .format import (
    CONFIG_KEY,
    DYNAMIC_AXES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    OPSET,
    GraphSpec,
    OnnxExportError,
    check_exportable,
    config_digest,
    graph_specs,
    require,
    sha256,
)

# Sizes of the dynamic axes in the inputs traced and checked at export (the exporter wants sizes of at least
# 2 for an axis to stay dynamic).
_EXAMPLE_SIZES = {"objects": 2, "frames": 3, "pointers": 3, "points": 3}


# ---------------------------------------------------------------------- the graphs, as modules to trace
# Each forward takes the graph's inputs by name and returns its outputs in the spec's order.


class _ImageEncoder(nn.Module):
    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model.encode_image(image)
        return (*out.backbone_fpn, out.vision_pos_enc[-1])


class _MemoryAttention(nn.Module):
    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, curr, curr_pos, memories, time_positions, pointers, pointer_times) -> torch.Tensor:
        return self.model.condition_on_memories(curr, curr_pos, memories, time_positions, pointers, pointer_times)


class _WithoutMemory(nn.Module):
    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.without_memory(features)


class _MaskDecoder(nn.Module):
    """:meth:`SAM2Model.predict_masks` with its Python choices as tensor inputs: every candidate is computed,
    ``multimask_output`` and ``has_mask_input`` select among them (``torch.where``), and the presence gate
    and the pointer choice are the model's own tensor operations."""

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embed, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input,
                has_mask_input, multimask_output) -> tuple[torch.Tensor, ...]:
        model, multimask = self.model, multimask_output
        prompt, decoder = model.sam_prompt_encoder, model.sam_mask_decoder
        high_res = [high_res_feats_0, high_res_feats_1]
        sparse = prompt.embed_points(point_coords, point_labels, pad=True)
        no_mask = prompt.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = torch.where(has_mask_input, prompt.mask_downscaling(mask_input), no_mask)
        masks, iou, tokens, score = decoder._predict(image_embed, prompt.get_dense_pe(), sparse, dense, high_res)
        if decoder.dynamic_multimask_via_stability:
            single, single_iou = decoder._pick_stable(masks, iou)
        else:
            single, single_iou = masks[:, :1], iou[:, :1]
        best = iou[:, 1:].argmax(dim=-1, keepdim=True)  # (B, 1), the first of ties as in predict_masks
        multi = masks[:, 1:].gather(1, best[:, :, None, None].expand(-1, -1, *masks.shape[-2:]))
        multi_token = tokens[:, 1:].gather(1, best[:, :, None].expand(-1, -1, tokens.shape[-1]))[:, 0]
        chosen = torch.where(multimask, multi, single)
        chosen_iou = torch.where(multimask, iou[:, 1:].gather(1, best), single_iou)
        token = torch.where(multimask, multi_token, tokens[:, 0])
        present = score > 0
        low = torch.where(present[:, :, None, None], chosen, NO_OBJ_SCORE)
        high = F.interpolate(low, size=(model.image_size,) * 2, mode="bilinear", align_corners=False)
        obj_ptr = model._gate_pointer(model.obj_ptr_proj(token), present.float())
        every = torch.where(present[:, :, None, None], masks, NO_OBJ_SCORE)
        return every, iou, chosen_iou, low, high, obj_ptr, score


class _MaskAsOutput(nn.Module):
    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image_embed, high_res_feats_0, high_res_feats_1, mask) -> tuple[torch.Tensor, ...]:
        out = self.model.mask_as_output(image_embed, [high_res_feats_0, high_res_feats_1], mask)
        return out.low_res_masks, out.high_res_masks, out.obj_ptr, out.object_score


class _MemoryEncoder(nn.Module):
    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, pix_feat, high_res_masks, object_score_logits, binarize) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.where(binarize, (high_res_masks > 0).float(), torch.sigmoid(high_res_masks))
        return self.model._memory_from_mask(pix_feat, mask, object_score_logits)


_MODULES = {"image_encoder": _ImageEncoder, "memory_attention": _MemoryAttention, "without_memory": _WithoutMemory,
            "mask_decoder": _MaskDecoder, "mask_as_output": _MaskAsOutput, "memory_encoder": _MemoryEncoder}


def example_inputs(spec: GraphSpec, config: ModelConfig, sizes: dict[str, int] | None = None,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs of a graph, with values in each input's range (valid slots, labels, points in the
    image, masks in {0, 1}); dynamic axes get ``sizes`` (by default 2-3)."""
    sizes = {**_EXAMPLE_SIZES, **(sizes or {})}
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for t in spec.inputs:
        shape = tuple(sizes[d] if isinstance(d, str) else d for d in t.shape)
        if t.name == "time_positions":
            x = torch.randint(0, config.num_maskmem, shape, generator=gen)
        elif t.name == "point_labels":
            x = torch.randint(-1, 4, shape, generator=gen, dtype=torch.int32)
        elif t.name == "point_coords":
            x = torch.rand(shape, generator=gen) * config.image_size
        elif t.name == "pointer_times":
            x = torch.rand(shape, generator=gen) * 2 - 1
        elif t.name == "mask":
            x = (torch.rand(shape, generator=gen) > 0.7).float()
        elif t.dtype == "bool":
            x = torch.tensor(bool(torch.randint(0, 2, (), generator=gen)))
        else:
            x = torch.randn(shape, generator=gen) * (4.0 if "mask" in t.name else 1.0)
        out[t.name] = x
    return out


def export_model(
    model: SAM2Model,
    out_dir: str | os.PathLike,
    *,
    opset: int = OPSET,
    overwrite: bool = False,
    source: str | None = None,
    log=None,
) -> Path:
    """Write ``model``'s graphs and ``manifest.json`` into ``out_dir``; returns the manifest's path.

    The graphs and the manifest are written into a hidden folder inside ``out_dir`` and moved into place
    only once all of them are written and checked, the manifest last: an export that fails or is interrupted
    leaves ``out_dir`` as it was (with ``overwrite``, the previous export stays usable). Each graph is run
    by ONNX Runtime on example inputs and compared with the PyTorch model; a graph off by more than float
    rounding (1e-4 of the outputs' scale), or an exporter failure, stops the export with an
    :class:`OnnxExportError`. ``log`` is called with a line per graph.
    """
    onnx = require("onnx")
    require("onnxscript")
    ort = require("onnxruntime")
    config = model.config
    check_exportable(config)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; the ONNX export is a folder of graphs and {MANIFEST}")
    specs = graph_specs(config)
    previous = [n for n in [MANIFEST, *(s.file for s in specs.values())] if (out / n).exists()]
    if previous and not overwrite:
        raise FileExistsError(f"{out} already holds an export ({', '.join(previous)}); nothing was changed: choose "
                              "another folder, or replace it (--overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    staging = new_folder(out, ".export-")
    try:
        manifest = _export_into(staging, onnx, ort, model, specs, opset, source, log)
        # Only renames from here on, within one folder: the old export is replaced as a whole or not at all
        # (a crash between them leaves no manifest, which loading reports).
        (out / MANIFEST).unlink(missing_ok=True)
        for spec in specs.values():
            os.replace(staging / spec.file, out / spec.file)
        os.replace(manifest, out / MANIFEST)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / MANIFEST


def _export_into(folder: Path, onnx, ort, model: SAM2Model, specs: dict, opset: int, source: str | None, log) -> Path:
    config = model.config
    # A private float32 copy on the CPU with plain PyTorch kernels: the user's model is left as it was.
    private = SAM2Model(config)
    private.load_state_dict(model.state_dict())
    model = use_packed_kernels(private.eval(), False)
    digest_of_config = config_digest(config)
    graphs = {}
    for name, spec in specs.items():
        module = _MODULES[name](model).eval()
        inputs = example_inputs(spec, config)
        path = folder / spec.file

        def write(tmp: Path) -> None:
            _export_graph(module, spec, inputs, tmp, opset)
            graph = onnx.load(str(tmp))
            onnx.helper.set_model_props(graph, {CONFIG_KEY: digest_of_config})
            onnx.save(graph, tmp)

        try:
            atomic_write(path, write, suffix=".tmp.onnx")
        except (OSError, OnnxExportError):
            raise
        except Exception as exc:  # the exporter raises many types; the user needs the graph and the reason
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise OnnxExportError(f"{spec.file}: the ONNX exporter failed on {config.name} ({reason}); nothing "
                                  "was changed in the output folder") from exc
        diff = _check_graph(ort, module, spec, inputs, path)
        graphs[name] = {**spec.to_dict(), "sha256": sha256(path), "max_abs_diff_vs_torch": diff}
        if log:
            log(f"{spec.file}: {path.stat().st_size / 1e6:.1f} MB; outputs within {diff:.1e} of PyTorch")
    import vos

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": config.name,
        "source": source,
        "image_size": config.image_size,
        "opset": opset,
        "exported_with": {"vos": vos.__version__, "torch": torch.__version__},
        "dynamic_axes": {
            "objects": "objects tracked or prompted together (any number)",
            "frames": "memory frames each object attends to (1 or more)",
            "pointers": "object pointers each object attends to (0 or more)",
            "points": "clicks and box corners of each object (1 or more; a padding point, label -1, when none)",
        },
        "config": config.to_dict(),
        "graphs": graphs,
    }
    text = json.dumps(manifest, indent=1) + "\n"
    return atomic_write(folder / MANIFEST, lambda tmp: tmp.write_text(text))


def _export_graph(module: nn.Module, spec: GraphSpec, inputs: dict[str, torch.Tensor], path: Path, opset: int) -> None:
    from torch.export import Dim

    dims = {d: Dim(d, min=low) for d, low in DYNAMIC_AXES.items()}
    dynamic = {t.name: {i: dims[d] for i, d in enumerate(t.shape) if isinstance(d, str)} or None for t in spec.inputs}
    args = tuple(inputs.values())
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on its own internals
        torch.onnx.export(
            module, args, str(path), dynamo=True, opset_version=opset, dynamic_shapes=dynamic,
            input_names=[t.name for t in spec.inputs], output_names=[t.name for t in spec.outputs],
            external_data=False, verbose=False,
        )


def _check_graph(ort, module: nn.Module, spec: GraphSpec, inputs: dict[str, torch.Tensor], path: Path) -> float:
    """Largest difference between ONNX Runtime's outputs and PyTorch's on ``inputs``; the graph's inputs and
    outputs must be the spec's."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()  # the command's choice (vos.model.device.use_cpu_threads)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    want = [t.name for t in spec.inputs], [t.name for t in spec.outputs]
    if got != want:
        raise OnnxExportError(f"{path.name}: the exporter produced inputs {got[0]} and outputs {got[1]}, not {want}")
    with torch.no_grad():
        expected = module(*inputs.values())
    expected = expected if isinstance(expected, tuple) else (expected,)
    actual = session.run(None, {k: v.numpy() for k, v in inputs.items()})
    diff = max(float((e - torch.from_numpy(a)).abs().max()) for e, a in zip(expected, actual))
    scale = max(1.0, *(float(e.abs().max()) for e in expected))
    if not diff <= 1e-4 * scale:  # also NaN
        raise OnnxExportError(f"{path.name}: ONNX Runtime's outputs differ from PyTorch's by {diff:.3g} (outputs up to "
                           f"{scale:.3g}): the exporter changed the computation; the export stopped here")
    return diff
