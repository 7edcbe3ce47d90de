"""The per-frame computations shared by the offline predictor and the live tracker.

Stateless apart from the model and the settings: the callers own each object's :class:`MemoryBank` and
decide which frame is prompted, tracked or remembered; this module turns those decisions into model calls,
batching objects wherever their memories line up.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from memory import AdmissionPolicy, AdmitAll, FrameQuality, MemoryBank, MemorySettings, Selection

from .image_encoder import ImageFeatures
from .model import HeadOutput, SAM2Model
from .prompts import Prompt
from .transforms import fill_holes, preprocess


_PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class TrackerSettings:
    """Behaviour of the predictor and tracker around the model.

    ``fill_hole_area`` and ``binarize_prompt_masks`` are SAM 2's post-processing (the official builder's
    ``apply_postprocessing=True`` sets 8 and True; together with the model config's
    ``dynamic_multimask_via_stability``). ``non_overlap`` gives every pixel to at most one object in the
    outputs. ``corrections_as_prompts`` makes clicks on an already tracked frame a prompted memory (SAM 2's
    ``add_all_frames_to_correct_as_cond``) rather than an ordinary recent one. ``keep_history`` makes the
    offline predictor keep every tracked frame's memory and low-resolution logits, as SAM 2 does, so that
    any later propagation, from any frame, sees exactly what the official predictor would (about 0.8 MB
    per object and frame at 1024); without it, memory per object stays bounded: whatever SAM 2's selection
    can no longer reach from the current frame or from a prompt is dropped, which changes nothing for
    propagations that start next to a prompt, but one restarted elsewhere begins with less memory.
    ``batch_objects`` runs objects through memory attention and the decoder together; results then differ
    from the official one-object-at-a-time predictor by float rounding (logits within about 1e-4);
    turn it off to reproduce it bit for bit.

    ``precision`` is the exact mode (``"float32"``) or a fast one: ``"bfloat16"`` (CPUs with AVX-512 BF16
    or AMX, and GPUs) or ``"float16"`` (GPUs) runs the model under autocast; masks then agree with exact
    mode at IoU of about 0.98 or better, logits are returned as float32 and memories are stored as always.
    """

    memory: MemorySettings = field(default_factory=MemorySettings)
    admission: AdmissionPolicy = field(default_factory=AdmitAll)
    fill_hole_area: int = 0
    binarize_prompt_masks: bool = False
    non_overlap: bool = False
    corrections_as_prompts: bool = False
    keep_history: bool = True
    batch_objects: bool = True
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, got {self.precision!r}")

    @classmethod
    def official(cls, **changes) -> "TrackerSettings":
        """The official video predictor's defaults (``build_sam2_video_predictor``, post-processing on)."""
        return cls(**{"fill_hole_area": 8, "binarize_prompt_masks": True, **changes})

    @classmethod
    def vos_inference(cls, **changes) -> "TrackerSettings":
        """The evaluation defaults of the official ``tools/vos_inference.py`` (DAVIS format): no
        post-processing, non-overlapping objects, threshold 0."""
        return cls(**{"non_overlap": True, **changes})

    @classmethod
    def live(cls, **changes) -> "TrackerSettings":
        """For endless streams: re-prompts persist as prompted memories; memory stays bounded."""
        return cls(**{"corrections_as_prompts": True, "keep_history": False, **changes})


@dataclass
class EncodedFrame:
    """A frame after the image encoder: ``size = (H, W)`` of the original; features with batch 1."""

    index: int
    size: tuple[int, int]
    features: ImageFeatures

    @property
    def vision(self) -> torch.Tensor:
        """``(1, C, h, w)`` stride-16 features."""
        return self.features.vision_features

    def high_res(self, batch: int) -> list[torch.Tensor]:
        """The high-resolution levels for the decoder (two, or none), expanded to ``batch`` objects."""
        return [x.expand(batch, -1, -1, -1) for x in self.features.high_res_features]


@dataclass
class ObjectOutput:
    """One object on one frame: ``logits (1, 1, h, w)`` at the decoder's resolution (4x the feature map),
    the object-score logit, the predicted IoU of the chosen mask, ``obj_ptr (C,)``, and once encoded, the
    frame's ``memory (mem_dim, h/4, w/4)``. ``prompted`` says whether it is remembered as a prompted frame;
    ``from_user`` whether its mask came from the user's input (then it is always remembered)."""

    logits: torch.Tensor
    object_score: float
    iou: float
    obj_ptr: torch.Tensor
    prompted: bool = False
    from_user: bool = False
    memory: torch.Tensor | None = None

    def remember(self, bank: MemoryBank, frame: int) -> bool:
        """Add this output to ``bank`` as frame ``frame`` (its memory must be encoded)."""
        quality = None if self.from_user else FrameQuality(self.iou, self.object_score)
        return bank.add(frame, self.memory, self.obj_ptr, self.object_score, self.prompted, quality)


def _computes(method):
    """Run an :class:`InferenceCore` method in inference mode, under autocast in a fast precision."""

    @functools.wraps(method)
    def wrapper(self: "InferenceCore", *args, **kwargs):
        dtype = _PRECISIONS[self.settings.precision]
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            return method(self, *args, **kwargs)

    return wrapper


class InferenceCore:
    """Encodes frames, conditions them on memory, decodes masks and encodes new memories."""

    def __init__(self, model: SAM2Model, settings: TrackerSettings | None = None) -> None:
        self.model = model.eval()
        self.settings = settings or TrackerSettings()

    @property
    def device(self) -> torch.device:
        return self.model.device

    def new_bank(self) -> MemoryBank:
        cfg = self.model.config
        return MemoryBank(self.settings.memory, cfg.num_maskmem, cfg.use_signed_tpos_enc_to_obj_ptrs, self.settings.admission)

    @_computes
    def encode(self, image: np.ndarray, index: int) -> EncodedFrame:
        """``(H, W, 3)`` RGB ``uint8`` -> features."""
        x = preprocess(image, self.model.image_size, self.device)
        return EncodedFrame(index, tuple(image.shape[:2]), self.model.encode_image(x))

    # ------------------------------------------------------------------ memory attention
    def condition(self, frame: EncodedFrame, selections: list[Selection]) -> torch.Tensor:
        """The frame's features conditioned on each selection: ``(B, C, h, w)`` for ``B = len(selections)``."""
        return condition_on_selections(self.model, frame.vision, frame.features.vision_pos_enc[-1], selections)

    # ------------------------------------------------------------------ heads
    def _outputs(self, heads: HeadOutput, multimask: bool, **flags) -> list[ObjectOutput]:
        logits = fill_holes(heads.low_res_masks.float(), self.settings.fill_hole_area)
        ious = heads.ious.max(dim=1).values if multimask else heads.ious[:, 0]
        obj_ptr = heads.obj_ptr.float()
        return [
            ObjectOutput(logits[i : i + 1], float(heads.object_score[i, 0]), float(ious[i]), obj_ptr[i], **flags)
            for i in range(logits.shape[0])
        ]

    @_computes
    def prompt(
        self,
        frame: EncodedFrame,
        bank: MemoryBank,
        prompt: Prompt,
        *,
        initial: bool,
        prev_logits: torch.Tensor | None = None,
        reverse: bool = False,
        num_frames: int | None = None,
    ) -> ObjectOutput:
        """Segment one object from the user's prompt.

        ``initial``: the object has not been tracked on this frame, so clicks are read without memory, as
        in SAM; otherwise the frame is conditioned on ``bank`` and the clicks correct ``prev_logits
        (1, 1, h, w)``, the frame's current prediction. A mask is taken as the output as it is.
        """
        model = self.model
        if prompt.mask is not None:
            heads = model.mask_as_output(frame.vision, frame.high_res(1), prompt.mask_input(model.image_size, self.device))
            return self._outputs(heads, False, from_user=True)[0]
        coords, labels = prompt.point_inputs(frame.size, model.image_size, self.device)
        if initial:
            features = model.without_memory(frame.vision)
        else:
            features = self.condition(frame, [bank.select(frame.index, reverse, num_frames)])
        if prev_logits is not None:
            prev_logits = prev_logits.to(self.device).clamp(-32.0, 32.0)
        multimask = model.use_multimask(initial, prompt.num_points)
        heads = model.predict_masks(features, frame.high_res(1), coords, labels, prev_logits, multimask)
        return self._outputs(heads, multimask, from_user=True)[0]

    @_computes
    def track(
        self, frame: EncodedFrame, banks: list[MemoryBank], reverse: bool = False, num_frames: int | None = None
    ) -> list[ObjectOutput]:
        """Track every object of ``banks`` on the frame, in one batch; memories are encoded too."""
        if not banks:
            return []
        if len(banks) > 1 and not self.settings.batch_objects:
            return [out for bank in banks for out in self.track(frame, [bank], reverse, num_frames)]
        model = self.model
        features = self.condition(frame, [bank.select(frame.index, reverse, num_frames) for bank in banks])
        b = len(banks)
        multimask = model.use_multimask(False, 0)
        heads = model.predict_masks(features, frame.high_res(b), multimask_output=multimask)
        memory, _ = model.encode_memory(frame.vision, heads.high_res_masks, heads.object_score)
        outputs = self._outputs(heads, multimask)
        for out, mem in zip(outputs, memory):
            out.memory = mem
        return outputs

    @_computes
    def encode_prompted(self, frame: EncodedFrame, outputs: list[ObjectOutput]) -> None:
        """Encode the memories of outputs that came from prompts, from their stored logits (as SAM 2 does
        once the user is done clicking)."""
        if not outputs:
            return
        model = self.model
        logits = torch.cat([o.logits for o in outputs]).to(self.device)
        high = F.interpolate(logits, size=(model.image_size,) * 2, mode="bilinear", align_corners=False)
        scores = torch.tensor([[o.object_score] for o in outputs], device=self.device)
        memory, _ = model.encode_memory(frame.vision, high, scores, binarize=self.settings.binarize_prompt_masks)
        for out, mem in zip(outputs, memory):
            out.memory = mem


_BATCH_MEMORY_BYTES = 8 << 20


def condition_on_selections(
    model: SAM2Model, vision: torch.Tensor, vision_pos: torch.Tensor, selections: list[Selection]
) -> torch.Tensor:
    """Features ``vision, vision_pos (1, C, h, w)`` of one frame conditioned on each memory selection:
    ``(B, C, h, w)`` for ``B = len(selections)``. Selections with the same signature go through memory
    attention together, in batches of at most ``_BATCH_MEMORY_BYTES`` of projected memory keys."""
    _, c, h, w = vision.shape
    # Token-major (hw, B, C) like the official layout: the decoder's kernels round differently on
    # other memory layouts, which long videos would accumulate.
    groups: dict[tuple, list[int]] = {}
    for i, sel in enumerate(selections):
        groups.setdefault(sel.signature, []).append(i)
    curr = vision.flatten(2).transpose(1, 2)
    curr_pos = vision_pos.flatten(2).transpose(1, 2)
    fused_rows: dict[int, torch.Tensor] = {}
    for rows in groups.values():
        memory, memory_pos, num_ptr = _memory_tokens(model, [selections[i] for i in rows])
        # Objects go through in batches whose projected memory keys stay cache-sized: 8 objects of hiera_t
        # at 512 px in one batch (60 MB of keys a layer) took 1.1-1.5x the time of one object at a time.
        step = max(1, _BATCH_MEMORY_BYTES // (memory.shape[1] * c * 4))
        for start in range(0, len(rows), step):
            part = slice(start, start + step)
            b = len(rows[part])
            fused = model.condition_on_memory(
                curr.expand(b, -1, -1), curr_pos.expand(b, -1, -1), memory[part], memory_pos[part], num_ptr
            )
            fused_rows.update(zip(rows[part], fused.transpose(0, 1).unbind(1)))
    tokens = torch.stack([fused_rows[i] for i in range(len(selections))], 1)  # (hw, B, C)
    return tokens.permute(1, 2, 0).view(len(selections), c, h, w)


def _memory_tokens(model: SAM2Model, selections: list[Selection]) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Memories of selections sharing one signature -> ``memory, memory_pos (B, M, mem_dim)`` and the
    number of trailing pointer tokens."""
    first = selections[0]
    device = model.device
    spatial_pos = model.memory_position(first.features[0])  # (tokens per frame, m)
    memory = torch.stack(
        [torch.cat([f.to(device).flatten(1).t() for f in sel.features]) for sel in selections]
    ).float()
    pos = torch.cat([spatial_pos + model.memory_time_encoding(t)[0] for t in first.time_positions])
    memory_pos = pos[None].expand(len(selections), -1, -1)
    if not first.pointers:
        return memory, memory_pos, 0
    pointers = torch.stack([torch.stack(sel.pointers) for sel in selections]).to(device)
    positions = torch.tensor(first.pointer_positions)
    tokens, token_pos = model.object_pointer_tokens(pointers, positions, first.max_pointers)
    return torch.cat([memory, tokens], 1), torch.cat([memory_pos, token_pos], 1), tokens.shape[1]
