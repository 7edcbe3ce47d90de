"""The per-frame path, once, for the offline predictor and the live tracker; its heads for training.

:class:`InferenceCore` makes every decision about a frame (which objects are tracked or prompted, which
outputs are encoded into memory and in which batch, what enters each bank, what is dropped) on the state
of the objects it holds (:class:`TrackedObject`), through two operations: :meth:`InferenceCore.track_frame`
(track every object on a frame, then apply its prompts) and :meth:`InferenceCore.apply_prompts` (prompts
between propagations, committed by :meth:`InferenceCore.commit`). The front-ends keep what differs
between them: the offline predictor random access, both directions and commits deferred until the user
is done clicking; the live tracker the newest frame and bounded memory. The model is any
:class:`vos.model.interface.TrackingModel`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from memory import (
    AdmissionPolicy,
    AdmitAll,
    FrameQuality,
    MemoryBank,
    MemorySettings,
    Selection,
)

from ..errors import UnknownNameError
from ..model.image_encoder import ImageFeatures
from ..model.interface import HeadOutput, TrackingModel, pointer_times
from ..model.kernels import CPU_BFLOAT16
from ..model.sam2 import NO_OBJ_SCORE
from ..model.transforms import (
    RESIZES,
    empty_logits,
    fill_holes,
    output_logits,
    preprocess,
)
from .prompts import Prompt, PromptError
from .results import FrameResult

_PRECISIONS = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}


@functools.cache
def warn_without_cpu_bfloat16() -> None:
    """Say once per process that bfloat16 fast mode runs without native support on this CPU."""
    if not CPU_BFLOAT16:
        warnings.warn(
            f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no native bfloat16 arithmetic (AVX-512 BF16 or "
            "AVX-NE-CONVERT): --precision bfloat16 runs on plain kernels here and is slower than float32; use "
            "float32 on this machine", RuntimeWarning, stacklevel=3)


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

    ``keep_corrections``: a correction on a tracked frame (clicks that do not make it a prompted memory)
    stays that frame's output and memory when a later propagation passes it; the official predictor
    (``False``) tracks such a frame again from memory, replacing the correction (which then only reaches
    propagations that start after it). ``resize`` is how frames are squashed to the model's input:
    ``"fast"`` (torch's 8-bit bicubic) or ``"pil"`` (PIL's bicubic, the official frame loader's pixels
    exactly; see :func:`vos.model.transforms.preprocess`).

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
    keep_corrections: bool = True
    resize: str = "fast"
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.resize not in RESIZES:
            raise ValueError(f"resize must be one of {RESIZES}, got {self.resize!r}")
        if self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, got {self.precision!r}")

    @classmethod
    def official(cls, **changes) -> "TrackerSettings":
        """The official video predictor's defaults (``build_sam2_video_predictor``, post-processing on)."""
        return cls(**{"fill_hole_area": 8, "binarize_prompt_masks": True, "keep_corrections": False, **changes})

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


@dataclass(frozen=True)
class ObjectOutput:
    """One object on one frame: ``logits (1, 1, h, w)`` at the decoder's resolution (4x the feature map),
    the object-score logit, the predicted IoU of the chosen mask, ``obj_ptr (C,)``, and once encoded, the
    frame's ``memory (mem_dim, h/4, w/4)``. ``prompted`` says whether it is remembered as a prompted frame;
    ``from_user`` whether its mask came from the user's input (then it is always remembered).
    ``candidates``: when the decoder gave several masks for an ambiguous prompt, all of them, ``logits
    (M, h, w)`` and their predicted IoUs ``(M,)`` (the chosen one has the highest), for a user to see."""

    logits: torch.Tensor
    object_score: float
    iou: float
    obj_ptr: torch.Tensor
    prompted: bool = False
    from_user: bool = False
    memory: torch.Tensor | None = None
    candidates: tuple[torch.Tensor, torch.Tensor] | None = None

    def remember(self, bank: MemoryBank, frame: int) -> bool:
        """Add this output to ``bank`` as frame ``frame`` (its memory must be encoded)."""
        quality = None if self.from_user else FrameQuality(self.iou, self.object_score)
        return bank.add(frame, self.memory, self.obj_ptr, self.object_score, self.prompted, quality)


@dataclass
class TrackedObject:
    """One object's state across frames: its memory bank; the user's inputs per frame and the frames where
    they made a prompted memory; the latest prediction per frame (``logits (1, 1, h, w)`` and object
    score); the frames it was tracked on and in which direction (``True``: reverse); and prompt outputs
    whose memory waits to be encoded (offline, until the user is done clicking on the frame)."""

    bank: MemoryBank
    inputs: dict[int, Prompt] = field(default_factory=dict)
    prompted: set[int] = field(default_factory=set)
    outputs: dict[int, tuple[torch.Tensor, float]] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)
    pending: dict[int, ObjectOutput] = field(default_factory=dict)

    def nbytes(self) -> int:
        return self.bank.nbytes() + sum(x.numel() * x.element_size() for x, _ in self.outputs.values())

    def previous_logits(self, t: int, reverse: bool) -> torch.Tensor | None:
        """The latest prediction ``(1, 1, h, w)`` before frame ``t`` in the direction of travel (the nearest
        earlier frame going forward, the nearest later one going backward), or ``None``."""
        before = [k for k in self.outputs if (k > t if reverse else k < t)]
        if not before:
            return None
        return self.outputs[min(before) if reverse else max(before)][0]


def _computes(method):
    """Run an :class:`InferenceCore` method in inference mode, under autocast in a fast precision."""

    @functools.wraps(method)
    def wrapper(self: "InferenceCore", *args, **kwargs):
        with self.computing():
            return method(self, *args, **kwargs)

    return wrapper


class InferenceCore:
    """The per-frame path: encodes frames, decides which objects are tracked or prompted on a frame,
    decodes their masks in batches, encodes their memories and enters them into the objects' banks.

    The core holds the objects (:attr:`objects`, by id); a front-end calls :meth:`track_frame` for each frame
    it tracks, :meth:`apply_prompts` for prompts given between propagations, and reads the results.
    ``num_frames``: the length of a video with random access (the offline predictor), so a later
    propagation may start anywhere, in either direction; ``None`` for a stream, whose next frame is always
    the newest, each object then keeping only its state for the current frame.
    """

    def __init__(self, model: TrackingModel, settings: TrackerSettings | None = None, num_frames: int | None = None) -> None:
        self.model = model.eval()
        self.settings = settings or TrackerSettings()
        if self.settings.precision != "float32" and not model.supports_autocast:
            raise ValueError(f"precision {self.settings.precision!r} runs the model under torch.autocast, which "
                             f"{type(model).__name__} does not follow: it computes in float32")
        if self.settings.precision == "bfloat16" and self.device.type == "cpu":
            warn_without_cpu_bfloat16()
        self.num_frames = num_frames
        self.objects: dict[int, TrackedObject] = {}

    @property
    def device(self) -> torch.device:
        return self.model.device

    @contextlib.contextmanager
    def computing(self):
        """Inference mode, under autocast in a fast precision: where every computation of the core runs."""
        dtype = _PRECISIONS[self.settings.precision]
        autocast = torch.autocast(self.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            yield

    @property
    def _low_res(self) -> tuple[int, int]:
        """The decoder's output size, ``(4h, 4w)`` of the feature map."""
        return (self.model.image_size // 4,) * 2

    @property
    def storage(self) -> torch.device:
        """Where predictions are kept between frames."""
        device = self.settings.memory.storage_device
        return torch.device(device) if device is not None else self.device

    # ------------------------------------------------------------------ objects
    @property
    def obj_ids(self) -> list[int]:
        return list(self.objects)

    def object(self, obj_id: int) -> TrackedObject:
        if obj_id not in self.objects:
            raise UnknownNameError(f"object {obj_id} is not tracked (objects: {self.obj_ids})")
        return self.objects[obj_id]

    def remove(self, obj_id: int) -> TrackedObject:
        """Forget an object (the others are unaffected); returns its state."""
        self.object(obj_id)
        return self.objects.pop(obj_id)

    def memory_bytes(self) -> int:
        """Bytes held by all memory banks and stored outputs."""
        return sum(obj.nbytes() for obj in self.objects.values())

    def new_object(self) -> TrackedObject:
        cfg = self.model.config
        bank = MemoryBank(self.settings.memory, cfg.num_maskmem, cfg.use_signed_tpos_enc_to_obj_ptrs, self.settings.admission)
        return TrackedObject(bank)

    def encode(self, image: np.ndarray, index: int, size: tuple[int, int] | None = None) -> EncodedFrame:
        """``(H, W, 3)`` RGB ``uint8`` -> features. ``size`` is the video's ``(H, W)`` when ``image`` is
        already at another size (the model's input, say); by default the image's."""
        return self.encode_many([image], [index], [size])[0]

    @_computes
    def encode_many(
        self, images: list[np.ndarray], indices: list[int], sizes: list[tuple[int, int] | None] | None = None,
        batch: bool = True,
    ) -> list[EncodedFrame]:
        """Several frames ``(H_i, W_i, 3)`` RGB ``uint8`` (of any sizes, from different videos, say) -> one
        :class:`EncodedFrame` each, with frame index ``indices[i]`` and ``sizes[i]`` as in :meth:`encode`.
        With ``batch`` and a model that takes several images at once (``batches_images``), all go through
        the image encoder in one call, which costs less per frame than one call each (about half at 4 frames
        on 2 CPU threads with the cores free, about a tenth on one thread); features then differ from
        :meth:`encode`'s by float rounding (about 1e-6)."""
        sizes = sizes or [None] * len(images)
        x = [preprocess(image, self.model.image_size, self.device, self.settings.resize) for image in images]
        if batch and self.model.batches_images and len(x) > 1:
            every = self.model.encode_image(torch.cat(x))
            features = [ImageFeatures([f[i : i + 1] for f in every.backbone_fpn], [p[i : i + 1] for p in every.vision_pos_enc])
                        for i in range(len(x))]
        else:
            features = [self.model.encode_image(one) for one in x]
        return [EncodedFrame(index, size or tuple(image.shape[:2]), f)
                for image, index, size, f in zip(images, indices, sizes, features)]

    # ------------------------------------------------------------------ a frame tracked; prompts applied
    def track_frame(
        self,
        frame: EncodedFrame,
        prompts: Mapping[int, Prompt] | None = None,
        *,
        reverse: bool = False,
        from_first_prompt: bool = False,
        discover: Callable[[EncodedFrame, FrameResult], Mapping[int, Prompt]] | None = None,
    ) -> dict[int, ObjectOutput]:
        """Track every object on a frame, then apply the frame's prompts; returns the outputs computed on it,
        by object id, each in its object's memory.

        Objects are tracked from memory, in one batch, unless the frame keeps their own input (see
        ``TrackerSettings.keep_corrections``), a mask replaces it now, or, with ``from_first_prompt``, the
        propagation (backward with ``reverse``) has not reached their first input yet. Then ``discover``, if
        given, sees the tracked objects' result and may return prompts for new ids. Then the prompts are
        applied as :meth:`apply_prompts` does, and their memories encoded in one batch.

        Everything is computed before anything changes, so an error (a discovered id in use) leaves the
        objects as they were; then new objects are added, each object's state is advanced, and what memory
        can no longer reach is dropped (``TrackerSettings.keep_history``).
        """
        return track_frames([(self, frame, prompts)], reverse=reverse, from_first_prompt=from_first_prompt,
                            discover=discover)[0]

    def _to_track(
        self, frame: EncodedFrame, prompts: Mapping[int, Prompt], reverse: bool, from_first_prompt: bool
    ) -> tuple[list[int], list[int]]:
        """Which objects the frame concerns (``active``) and which of them are tracked from memory on it."""
        t = frame.index
        keeps = (lambda o: t in o.inputs) if self.settings.keep_corrections else (lambda o: t in o.prompted)

        def started(obj: TrackedObject) -> bool:
            return not from_first_prompt or (t <= max(obj.inputs) if reverse else t >= min(obj.inputs))

        active = [i for i, obj in self.objects.items() if started(obj)]
        to_track = [i for i in active if not keeps(self.objects[i]) and not (i in prompts and prompts[i].mask is not None)]
        return active, to_track

    def _tracking_rows(self, frame: EncodedFrame, to_track: list[int], reverse: bool) -> list["TrackingRow"]:
        return [TrackingRow(frame, self.objects[i].bank.select(frame.index, reverse, self.num_frames),
                            self.objects[i].previous_logits(frame.index, reverse)) for i in to_track]

    def _after_tracking(
        self, frame: EncodedFrame, prompts: dict[int, Prompt], active: list[int], tracked: dict[int, ObjectOutput],
        reverse: bool, discover: Callable[[EncodedFrame, FrameResult], Mapping[int, Prompt]] | None,
    ) -> dict[int, ObjectOutput]:
        """The rest of :meth:`track_frame` once its objects are tracked: discovery, prompts, the state change."""
        t = frame.index
        if discover is not None:
            found = dict(discover(frame, self.result(t, frame.size, {i: _stored(o) for i, o in tracked.items()})))
            for obj_id, prompt in found.items():
                if obj_id in self.objects or obj_id in prompts:
                    raise PromptError(f"frame {t}: a discovered object has id {obj_id}, which is in use")
                prompt.check(frame.size, f"discovered object {obj_id}, frame {t}")
            prompts.update(found)
        states, prompted = self._prompted(frame, prompts, tracked, reverse)
        prompted = dict(zip(prompted, self.encode_prompted(frame, list(prompted.values()))))
        outputs = {**tracked, **prompted}
        self._enter(t, states, outputs, prompts, commit=True)
        for obj_id in active:
            self.objects[obj_id].tracked[t] = reverse
        if not self.settings.keep_history:
            for obj_id in active:
                self._forget(self.objects[obj_id], t, reverse)
        return outputs

    @_computes
    def apply_prompts(self, frame: EncodedFrame, prompts: Mapping[int, Prompt]) -> dict[int, ObjectOutput]:
        """Apply prompts on a frame, by object id, without tracking it; returns their outputs.

        For a new object, or on a frame the object was never tracked on, the clicks are read without memory,
        as SAM does (a prompted memory); otherwise they correct the frame's current prediction (a prompted
        memory only with ``corrections_as_prompts``). A mask replaces the prediction; clicks and a box with it
        then refine it. The outputs wait in ``pending`` for :meth:`commit` (the user may go on clicking)."""
        states, prompted = self._prompted(frame, prompts, {}, False)
        self._enter(frame.index, states, prompted, prompts, commit=False)
        return prompted

    def _prompted(
        self, frame: EncodedFrame, prompts: Mapping[int, Prompt], tracked: Mapping[int, ObjectOutput], reverse: bool
    ) -> tuple[dict[int, TrackedObject], dict[int, ObjectOutput]]:
        """Each prompt's output on the frame (``tracked``: the outputs just tracked there), and the state of
        each prompted object (a new one for a new id); nothing is changed."""
        t = frame.index
        states = {i: self.objects.get(i) or self.new_object() for i in prompts}
        prompted: dict[int, ObjectOutput] = {}
        for obj_id, prompt in prompts.items():
            obj = states[obj_id]
            current = tracked.get(obj_id)
            initial = current is None and t not in obj.tracked
            if current is None:
                pending = obj.pending.get(t)
                current = pending if pending is not None else obj.outputs.get(t)
            previous = None if current is None else _stored(current)[0]  # the frame's prediction, if any
            prompted[obj_id] = self.prompt(frame, obj.bank, prompt, initial=initial, prev_logits=previous,
                                           reverse=obj.tracked.get(t, reverse))
        return states, prompted

    def _enter(
        self, t: int, states: Mapping[int, TrackedObject], outputs: Mapping[int, ObjectOutput],
        prompts: Mapping[int, Prompt], commit: bool,
    ) -> None:
        """The state change of a frame: new objects added, every output stored as the frame's prediction and,
        with ``commit`` or when tracked, entered into its bank (prompt outputs otherwise wait in ``pending``)."""
        self.objects.update({i: s for i, s in states.items() if i not in self.objects})
        for obj_id, out in outputs.items():
            obj = self.objects[obj_id]
            obj.outputs[t] = (out.logits.to(self.storage), out.object_score)
            if obj_id in prompts:
                obj.inputs[t] = prompts[obj_id]
                if out.prompted:
                    obj.prompted.add(t)
            if obj_id in prompts and not commit:
                obj.pending[t] = out
            else:
                out.remember(obj.bank, t)

    @_computes
    def commit(self, frame: Callable[[int], EncodedFrame]) -> None:
        """Encode the memories of every pending prompt output, the objects prompted on a frame in one batch
        (as :meth:`track_frame` does, so both give the same numbers), and enter them into the banks, each
        object's in the order it was prompted (which memory attention sees)."""
        by_frame: dict[int, list[TrackedObject]] = {}
        for obj in self.objects.values():
            for t in obj.pending:
                by_frame.setdefault(t, []).append(obj)
        for t, owners in by_frame.items():
            encoded = self.encode_prompted(frame(t), [o.pending[t] for o in owners])
            for obj, out in zip(owners, encoded):
                obj.pending[t] = out
        for obj in self.objects.values():
            for t, out in obj.pending.items():
                out.remember(obj.bank, t)
            obj.pending.clear()

    def _forget(self, obj: TrackedObject, t: int, reverse: bool) -> None:
        """Drop what the next frames can no longer use: seekable, whatever neither this propagation nor one
        starting next to an input can reach (the record of tracked frames stays: a click on one is a
        correction); otherwise everything but the current frame's state."""
        if self.num_frames is not None:
            step = -1 if reverse else 1
            anchors = [(t, reverse), (t + step, reverse)]  # redo this frame, or go on
            anchors += [a for k in obj.inputs for a in ((k + 1, False), (k - 1, True))]
            obj.bank.prune(anchors, self.num_frames)
            for k in [k for k in obj.outputs if k not in obj.inputs and k != t]:
                del obj.outputs[k]
            return
        obj.bank.prune([(t + 1, False)], None)
        for table in (obj.outputs, obj.inputs, obj.tracked):
            for k in [k for k in table if k != t]:
                del table[k]
        obj.prompted.intersection_update(obj.inputs)

    def result(
        self, index: int, size: tuple[int, int], outputs: Mapping[int, tuple[torch.Tensor, float] | None] | None = None
    ) -> FrameResult:
        """The frame's result from each object's ``(logits (1, 1, h, w), object score)``, at the video's
        resolution ``size``; an object without one (``None``) is empty there. By default every object's
        current prediction on the frame."""
        if outputs is None:
            outputs = {i: o.outputs.get(index) for i, o in self.objects.items()}
        if not outputs:
            return FrameResult(index, [], torch.zeros(0, 1, *size, device=self.device), torch.zeros(0))
        logits = [empty_logits(1, self._low_res, self.device) if o is None else o[0].to(self.device) for o in outputs.values()]
        scores = [NO_OBJ_SCORE if o is None else o[1] for o in outputs.values()]
        video = output_logits(torch.cat(logits), size, self.settings.non_overlap)
        return FrameResult(index, list(outputs), video, torch.tensor(scores))

    # ------------------------------------------------------------------ memory attention
    def condition(self, frame: EncodedFrame, selections: list[Selection]) -> torch.Tensor:
        """The frame's features conditioned on each selection: ``(B, C, h, w)`` for ``B = len(selections)``."""
        return condition_on_selections(self.model, frame.vision, frame.features.vision_pos_enc[-1], selections)

    # ------------------------------------------------------------------ heads
    def _outputs(self, heads: HeadOutput, multimask: bool, memory: torch.Tensor | None = None, **flags) -> list[ObjectOutput]:
        logits = fill_holes(heads.low_res_masks.float(), self.settings.fill_hole_area)
        ious = heads.ious.max(dim=1).values if multimask else heads.ious[:, 0]
        obj_ptr = heads.obj_ptr.float()
        every = heads.low_res_multimasks.float() if multimask else None
        # The scores the memory bank decides on, in one transfer for the batch (a host sync on a GPU), not per object.
        scores, ious = torch.stack([heads.object_score[:, 0].float(), ious.float()]).tolist()
        return [
            ObjectOutput(logits[i : i + 1], scores[i], ious[i], obj_ptr[i],
                         memory=None if memory is None else memory[i],
                         candidates=None if every is None else (every[i], heads.ious[i].float()), **flags)
            for i in range(logits.shape[0])
        ]

    def prompt(
        self,
        frame: EncodedFrame,
        bank: MemoryBank,
        prompt: Prompt,
        *,
        initial: bool,
        prev_logits: torch.Tensor | None = None,
        reverse: bool = False,
    ) -> ObjectOutput:
        """Segment one object from the user's prompt (its memory is not encoded yet).

        ``initial``: the object has not been tracked on this frame, so clicks are read without memory, as
        in SAM, and the output becomes a prompted memory; otherwise the frame is conditioned on ``bank``.
        A mask is taken as the output as it is. Clicks refine ``prev_logits (1, 1, h, w)``, the frame's
        current prediction, when there is one, or the mask given with them.
        """
        model = self.model
        prompted = initial or self.settings.corrections_as_prompts
        if prompt.mask is not None:
            heads = model.mask_as_output(frame.vision, frame.high_res(1), prompt.mask_input(model.image_size, self.device))
            out = self._outputs(heads, False, prompted=prompted, from_user=True)[0]
            if not prompt.has_clicks:
                return out
            prev_logits = out.logits
        coords, labels = prompt.point_inputs(frame.size, model.image_size, self.device)
        if initial:
            features = model.without_memory(frame.vision)
        else:
            features = self.condition(frame, [bank.select(frame.index, reverse, self.num_frames)])
        multimask = model.use_multimask(initial, coords.shape[1])
        heads = clicked_heads(model, features, frame.high_res(1), coords, labels, prev_logits, multimask)
        return self._outputs(heads, multimask, prompted=prompted, from_user=True)[0]

    def track(self, rows: list["TrackingRow"]) -> list[ObjectOutput]:
        """Track one object a row, each on its row's frame (one frame, or the frames of several streams), in
        one batch (``TrackerSettings.batch_objects``); memories are encoded too."""
        if not rows:
            return []
        if len(rows) > 1 and not self.settings.batch_objects:
            return [out for row in rows for out in self.track([row])]
        model = self.model
        frames = [row.frame for row in rows]
        if not model.batches_images and any(f is not frames[0] for f in frames):  # one frame at a time
            by_frame: dict[int, list[int]] = {}
            for i, f in enumerate(frames):
                by_frame.setdefault(id(f), []).append(i)
            outputs: dict[int, ObjectOutput] = {}
            for group in by_frame.values():
                outputs.update(zip(group, self.track([rows[i] for i in group])))
            return [outputs[i] for i in range(len(rows))]
        if all(f is frames[0] for f in frames):  # one frame: its features once, for all objects
            vision, vision_pos, high_res = frames[0].vision, frames[0].features.vision_pos_enc[-1], frames[0].high_res(len(rows))
        else:
            vision = torch.cat([f.vision for f in frames])
            vision_pos = torch.cat([f.features.vision_pos_enc[-1] for f in frames])
            high_res = [torch.cat(level) for level in zip(*(f.high_res(1) for f in frames))]
        prior = None
        if model.config.track_with_previous_mask:
            prior = prior_logits([row.previous for row in rows], self._low_res, self.device)
        heads = tracked_heads(model, vision, vision_pos, high_res, [row.selection for row in rows], prior)
        memory, _ = model.encode_memory(vision, heads.high_res_masks, heads.object_score)
        return self._outputs(heads, model.use_multimask(False, 0), memory)

    def encode_prompted(self, frame: EncodedFrame, outputs: list[ObjectOutput]) -> list[ObjectOutput]:
        """The outputs that came from prompts, with their memories encoded from their logits (as SAM 2 does
        once the user is done clicking)."""
        if not outputs:
            return []
        logits = torch.cat([o.logits for o in outputs]).to(self.device)
        scores = torch.tensor([[o.object_score] for o in outputs], device=self.device)
        memory = memory_from_logits(self.model, frame.vision, logits, scores, self.settings.binarize_prompt_masks)
        return [dataclasses.replace(out, memory=mem) for out, mem in zip(outputs, memory)]


def _stored(out: ObjectOutput | tuple[torch.Tensor, float] | None) -> tuple[torch.Tensor, float] | None:
    if isinstance(out, ObjectOutput):
        return out.logits, out.object_score
    return out


@dataclass(frozen=True)
class TrackingRow:
    """One object to track on one frame: the frame, its memory selection, and its latest logits ``(1, 1, h, w)``
    before the frame in the direction of travel (or ``None``)."""

    frame: EncodedFrame
    selection: Selection
    previous: torch.Tensor | None


def track_frames(
    steps: list[tuple[InferenceCore, EncodedFrame, Mapping[int, Prompt] | None]],
    *,
    reverse: bool = False,
    from_first_prompt: bool = False,
    discover: Callable[[EncodedFrame, FrameResult], Mapping[int, Prompt]] | None = None,
) -> list[dict[int, ObjectOutput]]:
    """:meth:`InferenceCore.track_frame` of each ``(core, frame, prompts)``: cores of one model and settings (the
    streams of :class:`vos.tracking.live_tracker.MultiStreamTracker`), each a frame of its own, with the tracked
    objects of all of them through memory attention, the decoder and the memory encoder in one batch. Results
    differ from one core at a time by float rounding only (see ``TrackerSettings.batch_objects``)."""
    if not steps:
        return []
    first = steps[0][0]
    if any(core.model is not first.model or core.settings != first.settings for core, _, _ in steps):
        raise ValueError("cores tracked together must share one model and one setting")
    with first.computing():
        plans = []
        for core, frame, prompts in steps:
            active, to_track = core._to_track(frame, prompts or {}, reverse, from_first_prompt)
            plans.append((active, to_track, core._tracking_rows(frame, to_track, reverse)))
        outputs = iter(first.track([row for _, _, rows in plans for row in rows]))
        return [core._after_tracking(frame, dict(prompts or {}), active, {i: next(outputs) for i in to_track},
                                     reverse, discover)
                for (core, frame, prompts), (active, to_track, _) in zip(steps, plans)]


# ---------------------------------------------------------------------- the heads path, with or without gradients
# Inference (above) and training (vos.train.rollout) run a frame through these same functions, on a batch
# of objects.

PREV_LOGITS_LIMIT = 32.0  # a correction sees the previous logits clamped, as SAM 2 feeds them back


PRIOR_LOGIT = 10.0  # the previous mask enters as +-10, as a mask prompt taken as output is scored


def prior_logits(previous: list[torch.Tensor | None], size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """The previous masks a model that tracks with them sees: ``(B, 1, h, w)``, each ``+-PRIOR_LOGIT`` by
    whether the object's latest prediction ``(1, 1, h, w)`` covered the pixel, and 0 (no information) for
    an object without one. Binary, so that training can stand in deformed true masks for predictions."""
    rows = [torch.zeros(1, 1, *size, device=device) if p is None
            else torch.where(p.to(device) > 0, PRIOR_LOGIT, -PRIOR_LOGIT).float() for p in previous]
    return torch.cat(rows)


def tracked_heads(
    model: TrackingModel, vision: torch.Tensor, vision_pos: torch.Tensor, high_res: list[torch.Tensor],
    selections: list[Selection], prior: torch.Tensor | None = None,
) -> HeadOutput:
    """A frame tracked from memory, no prompt: ``vision, vision_pos (1, C, h, w)`` conditioned on each
    object's selection, through the decoder; ``B = len(selections)`` objects. ``prior (B, 1, h', w')``: the
    previous masks (:func:`prior_logits`), for a model that tracks with them."""
    features = condition_on_selections(model, vision, vision_pos, selections)
    return model.predict_masks(features, high_res, mask_inputs=prior, multimask_output=model.use_multimask(False, 0))


def clicked_heads(
    model: TrackingModel, features: torch.Tensor, high_res: list[torch.Tensor], coords: torch.Tensor,
    labels: torch.Tensor, prev_logits: torch.Tensor | None, multimask: bool,
) -> HeadOutput:
    """Clicks ``coords (B, N, 2)`` in model-input pixels, ``labels (B, N)``, on ``features (B, C, h, w)``;
    a correction also sees the frame's previous ``prev_logits (B, 1, h', w')``."""
    if prev_logits is not None:
        prev_logits = prev_logits.to(features.device).clamp(-PREV_LOGITS_LIMIT, PREV_LOGITS_LIMIT)
    return model.predict_masks(features, high_res, coords, labels, prev_logits, multimask)


def memory_from_logits(
    model: TrackingModel, vision: torch.Tensor, logits: torch.Tensor, object_score: torch.Tensor, binarize: bool
) -> torch.Tensor:
    """Memories ``(B, mem_dim, ...)`` of ``logits (B, 1, h', w')`` at the decoder's resolution, brought back
    to the model's input size as the official predictor does for prompted frames."""
    high = F.interpolate(logits, size=(model.image_size,) * 2, mode="bilinear", align_corners=False)
    return model.encode_memory(vision, high, object_score, binarize=binarize)[0]


_BATCH_MEMORY_BYTES = 8 << 20


def condition_on_selections(
    model: TrackingModel, vision: torch.Tensor, vision_pos: torch.Tensor, selections: list[Selection]
) -> torch.Tensor:
    """Features ``vision, vision_pos (1, C, h, w)`` of one frame, or ``(B, C, h, w)`` of each row's frame,
    conditioned on each memory selection: ``(B, C, h, w)`` for ``B = len(selections)``. Selections with the same signature go through memory
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
        memories, time_positions, pointers, pointer_times = _memory_inputs(model, [selections[i] for i in rows])
        tokens = memories[0].numel() // memories.shape[2] + (0 if pointers is None else pointers[0].numel() // model.mem_dim)
        # Objects go through in batches whose projected memory keys stay cache-sized: 8 objects of hiera_t
        # at 512 px in one batch (60 MB of keys a layer) took 1.1-1.5x the time of one object at a time.
        step = max(1, _BATCH_MEMORY_BYTES // (tokens * c * 4))
        for start in range(0, len(rows), step):
            part = slice(start, start + step)
            fused = model.condition_on_memories(
                _rows(curr, rows[part]), _rows(curr_pos, rows[part]), memories[part], time_positions,
                None if pointers is None else pointers[part], pointer_times,
            )
            fused_rows.update(zip(rows[part], fused.transpose(0, 1).unbind(1)))
    tokens = torch.stack([fused_rows[i] for i in range(len(selections))], 1)  # (hw, B, C)
    return tokens.permute(1, 2, 0).view(len(selections), c, h, w)


def _rows(x: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Rows ``rows`` of ``x (B, ...)``, or ``x (1, ...)`` expanded to as many."""
    return x.expand(len(rows), *x.shape[1:]) if x.shape[0] == 1 else x[rows]


def _memory_inputs(
    model: TrackingModel, selections: list[Selection]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Memories of selections sharing one signature, as :meth:`TrackingModel.condition_on_memories` takes them:
    ``memories (B, F, mem_dim, ...)``, ``time_positions (F,)``, ``pointers (B, P, C)`` and their normalised
    times ``(P,)`` (both ``None`` without pointers)."""
    first = selections[0]
    device = model.device
    memories = torch.stack([torch.stack([f.to(device) for f in sel.features]) for sel in selections]).float()
    time_positions = torch.tensor(first.time_positions, device=device)
    if not first.pointers:
        return memories, time_positions, None, None
    pointers = torch.stack([torch.stack(sel.pointers) for sel in selections]).to(device)
    times = pointer_times(torch.tensor(first.pointer_positions, device=device), first.max_pointers)
    return memories, time_positions, pointers, times
