"""One object's memory bank: SAM 2's memory selection, with eviction so that memory stays bounded."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from .admission import AdmissionPolicy, AdmitAll, FrameQuality


@dataclass(frozen=True)
class MemorySettings:
    """How much is remembered and where it is kept.

    ``temporal_stride`` is SAM 2's ``memory_temporal_stride_for_eval`` (r); ``max_pointers`` its
    ``max_obj_ptrs_in_encoder`` (further capped by a known video length); ``max_prompts_in_attention`` its
    ``max_cond_frames_in_attn`` (-1: all). ``max_prompted_frames`` caps how many prompted frames are kept
    at all (the first and the most recently added ones stay; ``None``: no cap). Memory features are
    stored as ``storage_dtype`` on ``storage_device`` (``None``: where they were computed); SAM 2 keeps
    them in bfloat16. ``keep_gradients`` keeps memories attached to the autograd graph, for training
    through the memory (then store them as float32).
    """

    temporal_stride: int = 1
    max_pointers: int = 16
    max_prompts_in_attention: int = -1
    max_prompted_frames: int | None = 16
    only_past_pointers: bool = True
    storage_device: torch.device | str | None = None
    storage_dtype: torch.dtype = torch.bfloat16
    keep_gradients: bool = False

    def __post_init__(self) -> None:
        if self.temporal_stride < 1:
            raise ValueError(f"temporal_stride must be >= 1, got {self.temporal_stride}")
        if self.max_prompts_in_attention != -1 and self.max_prompts_in_attention < 2:
            raise ValueError("max_prompts_in_attention must be -1 (all) or at least 2")
        if self.max_prompted_frames is not None and self.max_prompted_frames < 1:
            raise ValueError("max_prompted_frames must be None or at least 1")


@dataclass
class FrameMemory:
    """What is kept of one frame: ``features (mem_dim, h, w)`` (``None`` once only the pointer can still
    be selected), ``obj_ptr (C,)`` and the object-score logit."""

    frame: int
    features: torch.Tensor | None
    obj_ptr: torch.Tensor
    object_score: float
    prompted: bool
    order: int = 0  # insertion order, to keep the most recently added prompted frames


@dataclass
class Selection:
    """The memories that condition one frame, in SAM 2's order.

    ``features[i] (mem_dim, h, w)`` is seen at temporal slot ``time_positions[i]`` (0 = prompted frame,
    ``num_maskmem - 1`` = the previous frame); ``pointers[j] (C,)`` at signed or absolute distance
    ``pointer_positions[j]``, normalised by ``max_pointers - 1``.
    """

    features: list[torch.Tensor] = field(default_factory=list)
    time_positions: list[int] = field(default_factory=list)
    pointers: list[torch.Tensor] = field(default_factory=list)
    pointer_positions: list[int] = field(default_factory=list)
    max_pointers: int = 16

    @property
    def signature(self) -> tuple:
        """Equal for selections that can be batched through memory attention together."""
        return tuple(self.time_positions), tuple(self.pointer_positions), self.max_pointers


def fifo_frames(frame: int, reverse: bool, num_maskmem: int, stride: int) -> list[tuple[int, int]]:
    """``(t_pos, frame index)`` of the non-prompted memories SAM 2 looks up for ``frame``: the previous
    frame in tracking direction, then ``num_maskmem - 2`` frames on the grid of every ``stride``-th frame."""
    out = []
    for t_pos in range(1, num_maskmem):
        t_rel = num_maskmem - t_pos
        if t_rel == 1:
            t = frame + 1 if reverse else frame - 1
        elif reverse:
            t = -(-(frame + 2) // stride) * stride + (t_rel - 2) * stride
        else:
            t = ((frame - 2) // stride) * stride - (t_rel - 2) * stride
        out.append((t_pos, t))
    return out


def closest_prompts(frame: int, prompted: list[int], limit: int) -> list[int]:
    """The prompted frames memory attention uses, in the order it sees them: all (in the order given),
    or ``limit`` of them: the closest before, the closest at or after, then the nearest in time."""
    if limit == -1 or len(prompted) <= limit:
        return prompted
    chosen = []
    before = [t for t in prompted if t < frame]
    after = [t for t in prompted if t >= frame]
    if before:
        chosen.append(max(before))
    if after:
        chosen.append(min(after))
    rest = sorted((t for t in prompted if t not in chosen), key=lambda t: abs(t - frame))
    return chosen + rest[: limit - len(chosen)]


class MemoryBank:
    """Memories of one object, at most one per frame.

    Args:
        settings: see :class:`MemorySettings`.
        num_maskmem: the model's number of memory slots (1 prompted + ``num_maskmem - 1`` recent).
        signed_pointer_positions: SAM 2.1 encodes pointer distance with a sign (past positive).
        admission: decides whether a tracked frame enters the FIFO; prompted frames always do.
    """

    def __init__(
        self,
        settings: MemorySettings,
        num_maskmem: int,
        signed_pointer_positions: bool,
        admission: AdmissionPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.num_maskmem = num_maskmem
        self.signed = signed_pointer_positions
        self.admission = admission or AdmitAll()
        self._entries: dict[int, FrameMemory] = {}
        self._added = 0

    # ------------------------------------------------------------------ contents
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, frame: int) -> bool:
        return frame in self._entries

    def get(self, frame: int) -> FrameMemory | None:
        return self._entries.get(frame)

    @property
    def prompted_frames(self) -> list[int]:
        """In the order they were first prompted, which is the order memory attention sees them."""
        return [t for t, e in self._entries.items() if e.prompted]

    def nbytes(self) -> int:
        """Bytes held by stored tensors."""
        total = 0
        for e in self._entries.values():
            total += e.obj_ptr.numel() * e.obj_ptr.element_size()
            if e.features is not None:
                total += e.features.numel() * e.features.element_size()
        return total

    def add(
        self,
        frame: int,
        features: torch.Tensor,
        obj_ptr: torch.Tensor,
        object_score: float,
        prompted: bool,
        quality: FrameQuality | None = None,
    ) -> bool:
        """Remember ``frame``: ``features (mem_dim, h, w)``, ``obj_ptr (C,)``. Replaces what was kept of that
        frame. A tracked frame's ``quality`` goes to the admission policy; frames without one (prompted
        frames, corrections) are always admitted. Returns whether it was admitted."""
        if quality is not None and not self.admission(quality):
            self._entries.pop(frame, None)
            return False
        s = self.settings
        device = s.storage_device if s.storage_device is not None else features.device
        self._added += 1
        previous = self._entries.get(frame)
        if previous is not None and previous.prompted != prompted:
            del self._entries[frame]  # a frame changing role goes to the end of the order, as in SAM 2
        if not s.keep_gradients:
            features, obj_ptr = features.detach(), obj_ptr.detach()
        self._entries[frame] = FrameMemory(
            frame=frame,
            features=features.to(device=device, dtype=s.storage_dtype),
            obj_ptr=obj_ptr.to(device=device, dtype=torch.float32),
            object_score=float(object_score),
            prompted=prompted,
            order=self._added,
        )
        if prompted:
            self._cap_prompted()
        return True

    def _cap_prompted(self) -> None:
        cap = self.settings.max_prompted_frames
        prompted = sorted((e for e in self._entries.values() if e.prompted), key=lambda e: e.order)
        if cap is None or len(prompted) <= cap:
            return
        newest = prompted[len(prompted) - cap + 1 :]  # the cap - 1 most recent (none when cap is 1)
        keep = {prompted[0].frame, *(e.frame for e in newest)}
        for e in prompted:
            if e.frame not in keep:
                del self._entries[e.frame]

    # ------------------------------------------------------------------ selection
    def pointer_budget(self, num_frames: int | None) -> int:
        return min(num_frames, self.settings.max_pointers) if num_frames else self.settings.max_pointers

    def select(self, frame: int, reverse: bool = False, num_frames: int | None = None) -> Selection:
        """SAM 2's memory for tracking ``frame`` (which must not be an initial prompted frame).

        Prompted frames come first at temporal slot 0; then the FIFO of recent frames; then object
        pointers: prompted frames' (past ones only, by default) and those of up to ``max_pointers - 1``
        previous frames in tracking direction. ``num_frames`` is the video length when known.
        """
        s = self.settings
        prompted = self.prompted_frames
        chosen = closest_prompts(frame, prompted, s.max_prompts_in_attention)
        unchosen = set(prompted) - set(chosen)
        sel = Selection(max_pointers=self.pointer_budget(num_frames))

        def usable(t: int) -> FrameMemory | None:
            e = self._entries.get(t)
            # A prompted frame left out of the prompt slots still counts as a recent frame.
            return e if e is not None and (not e.prompted or t in unchosen) else None

        for t in chosen:
            sel.features.append(self._entries[t].features)
            sel.time_positions.append(0)
        for t_pos, t in fifo_frames(frame, reverse, self.num_maskmem, s.temporal_stride):
            e = usable(t)
            if e is not None and e.features is not None:
                sel.features.append(e.features)
                sel.time_positions.append(t_pos)

        direction = -1 if reverse else 1
        for t in chosen:
            if s.only_past_pointers and (t - frame) * direction > 0:
                continue
            sel.pointers.append(self._entries[t].obj_ptr)
            sel.pointer_positions.append((frame - t) * direction if self.signed else abs(frame - t))
        for t_diff in range(1, sel.max_pointers):
            t = frame - direction * t_diff
            if t < 0 or (num_frames is not None and t >= num_frames):
                break
            e = usable(t)
            if e is not None:
                sel.pointers.append(e.obj_ptr)
                sel.pointer_positions.append(t_diff)
        return sel

    # ------------------------------------------------------------------ eviction
    def prune(self, anchors: Iterable[tuple[int, bool]], num_frames: int | None = None) -> None:
        """Forget what no selection can use any more.

        ``anchors`` are ``(frame, reverse)`` pairs where tracking may resume: ``frame`` and the frames
        after it in that direction may still be tracked, and will be written anew when they are, so only
        memories behind ``frame`` matter for them. Prompted frames are kept (within
        ``max_prompted_frames``); of other frames, the features are kept only while a FIFO can still
        select them and the pointer only while a pointer slot can.
        """
        s = self.settings
        budget = self.pointer_budget(num_frames)
        horizon = max((self.num_maskmem - 1) * s.temporal_stride, budget) + 1
        spatial: set[int] = set()
        pointer: set[int] = set()
        for anchor, reverse in anchors:
            d = -1 if reverse else 1
            behind = lambda t: (t - anchor) * d < 0
            for k in range(horizon + 1):
                g = anchor + d * k
                if g < 0 or (num_frames is not None and g >= num_frames):
                    break  # no frame there to track
                fifo = fifo_frames(g, reverse, self.num_maskmem, s.temporal_stride)
                spatial.update(t for _, t in fifo if behind(t))
                pointer.update(t for t in (g - d * t_diff for t_diff in range(1, budget)) if behind(t))
        for t in list(self._entries):
            e = self._entries[t]
            if e.prompted:
                continue
            if t not in pointer and t not in spatial:
                del self._entries[t]
            elif t not in spatial:
                e.features = None
