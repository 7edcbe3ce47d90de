"""A compiled model: ``torch.compile`` of the modules a frame passes through, on whatever device runs them.

Each of the image encoder, memory attention, the prompt encoder, the mask decoder and the memory encoder (and
EdgeTAM's perceiver) is compiled in place (``nn.Module.compile``), so the model keeps its class, its parameters
and its state-dict keys, and the trackers run it as they run the eager one. The glue between them (token
layouts, the memory bank's selection, resizing) stays eager: it is cheap, and it is where shapes change.

Shapes vary from frame to frame: the number of objects, of memory frames and of object pointers. Compiled with
PyTorch's default (``dynamic=None``), a module is first specialised to the shapes it sees, and the first shape
that changes makes it recompile once with that dimension symbolic, after which new sizes reuse the graph: a new
object or a fuller bank costs one recompilation per module, not one per frame
(:func:`compile_stats` counts them).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

COMPILED_MODULES = ("image_encoder", "memory_attention", "sam_prompt_encoder", "sam_mask_decoder", "memory_encoder",
                    "spatial_perceiver", "obj_ptr_proj")


def compile_model(model: nn.Module, **options) -> nn.Module:
    """Compile ``model``'s per-frame modules in place (``options`` go to ``torch.compile``); returns ``model``.
    Compilation itself happens on each module's first call (and on a recompilation): the first frames are slow."""
    _fill_tables(model)
    for name in COMPILED_MODULES:
        module = getattr(model, name, None)
        if isinstance(module, nn.Module):
            module.compile(**options)
    model.compiled = True
    return model


def _fill_tables(model: nn.Module) -> None:
    """One eager frame through the model (a blank image, its memory, memory attention on it), so that the tables
    the modules keep once computed (position encodings, RoPE angles) exist before compiling: a compiled graph
    reads them as constants, where one traced while they were missing would compute them on every call, and
    would be recompiled once eager code filled them."""
    s = model.image_size
    with torch.inference_mode():
        features = model.encode_image(torch.zeros(1, 3, s, s, device=model.device))
        vision, vision_pos = features.vision_features, features.vision_pos_enc[-1]
        memory, _ = model.encode_memory(vision, torch.zeros(1, 1, s, s, device=model.device),
                                        torch.zeros(1, 1, device=model.device))
        tokens = vision.flatten(2).transpose(1, 2)
        model.condition_on_memories(tokens, vision_pos.flatten(2).transpose(1, 2), memory[:, None],
                                    torch.zeros(1, dtype=torch.long, device=model.device))


def is_compiled(model: nn.Module) -> bool:
    return bool(getattr(model, "compiled", False))


@dataclass(frozen=True)
class CompileStats:
    """What compilation cost this process so far: graphs compiled (``graphs``; a module's recompilation
    for a new shape is one more), and seconds spent compiling (``seconds``)."""

    graphs: int
    seconds: float

    def __sub__(self, other: "CompileStats") -> "CompileStats":
        return CompileStats(self.graphs - other.graphs, self.seconds - other.seconds)

    def describe(self) -> str:
        return f"{self.graphs} graph{'s' * (self.graphs != 1)} compiled in {self.seconds:.1f} s"


def compile_stats() -> CompileStats:
    """Compilation so far in this process (TorchDynamo's own counters)."""
    from torch._dynamo.utils import compilation_time_metrics, counters

    seconds = sum(sum(times) for name, times in compilation_time_metrics.items() if name.startswith("_compile"))
    return CompileStats(int(counters["stats"]["unique_graphs"]), float(seconds))
