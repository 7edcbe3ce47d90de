"""The offline video predictor: prompts on any frame, propagation forward and backward, many objects."""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from memory import MemoryBank
from streams import SeekableSource, open_video

from .errors import UnknownNameError
from .inference_core import EncodedFrame, InferenceCore, ObjectOutput, TrackerSettings
from .model import NO_OBJ_SCORE, SAM2Model
from .prompts import Prompt, PromptError, check_frame_index, check_obj_id
from .results import FrameResult
from .transforms import empty_logits, output_logits


@dataclass
class _Object:
    """One object's state: its memory bank, the user's inputs per frame, what was predicted per frame
    (low-resolution logits and object score), on which frames it was tracked and in which direction,
    and prompt outputs not yet encoded into memory."""

    bank: MemoryBank
    inputs: dict[int, Prompt] = field(default_factory=dict)
    outputs: dict[int, tuple[torch.Tensor, float]] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)
    pending: dict[int, ObjectOutput] = field(default_factory=dict)


class VideoPredictor:
    """Segment and track objects through a video file or a folder of frames.

    Frames are decoded on demand; the image encoder runs once per frame for all objects, and objects
    whose memories line up go through memory attention and the decoder as one batch.

    Example::

        predictor = VideoPredictor(model, "clip.mp4")
        predictor.add_points(0, obj_id=1, points=[[210, 350]])
        for result in predictor.propagate():
            save(result.frame_idx, result.masks)
    """

    def __init__(
        self,
        model: SAM2Model,
        video: str | os.PathLike | SeekableSource,
        settings: TrackerSettings | None = None,
    ) -> None:
        self.core = InferenceCore(model, settings)
        self.settings = self.core.settings
        self.source = video if isinstance(video, SeekableSource) else open_video(video)
        self.num_frames = len(self.source)
        self.video_size: tuple[int, int] = tuple(self.source.size)
        self._objects: dict[int, _Object] = {}
        self._encoded: EncodedFrame | None = None

    # ------------------------------------------------------------------ objects
    @property
    def obj_ids(self) -> list[int]:
        return list(self._objects)

    def _check_frame(self, frame_idx: int) -> int:
        return check_frame_index(frame_idx, self.num_frames)

    def _object(self, obj_id: int) -> _Object:
        if obj_id not in self._objects:
            raise UnknownNameError(f"object {obj_id} is not tracked (objects: {self.obj_ids})")
        return self._objects[obj_id]

    def remove_object(self, obj_id: int) -> list[int]:
        """Forget an object entirely; the others are unaffected. Returns the frames it had prompts on."""
        frames = sorted(self._object(obj_id).inputs)
        del self._objects[obj_id]
        return frames

    def reset(self) -> None:
        """Forget every object and prompt."""
        self._objects.clear()

    def memory_bytes(self) -> int:
        """Bytes held by all memory banks and stored outputs."""
        total = 0
        for obj in self._objects.values():
            total += obj.bank.nbytes() + sum(x.numel() * x.element_size() for x, _ in obj.outputs.values())
        return total

    # ------------------------------------------------------------------ prompts
    def add_points(
        self,
        frame_idx: int,
        obj_id: int,
        points=None,
        labels=None,
        box=None,
        clear: bool = True,
    ) -> FrameResult:
        """Clicks (``points (N, 2)`` as ``x, y`` in video pixels, ``labels`` 1/0) and/or a ``box``
        ``(x1, y1, x2, y2)`` for an object on a frame. A new ``obj_id`` starts a new object, at any time.

        With ``clear=False`` the clicks are added to those already on the frame. On a frame the object was
        already tracked on, the clicks correct the tracked mask. Returns every object's masks on the frame.
        """
        frame_idx, obj_id = self._check_frame(frame_idx), check_obj_id(obj_id)
        where = f"object {obj_id}, frame {frame_idx}"
        prompt = Prompt.make(points, labels, box, where=where)
        previous = self._objects[obj_id].inputs.get(frame_idx) if obj_id in self._objects else None
        if not clear and previous is not None and previous.mask is None:
            if prompt.box is not None:
                raise PromptError(f"{where}: a box must come before any click; add it with clear=True")
            points = [p for p in (previous.points, prompt.points) if p is not None]
            labels = [p for p in (previous.labels, prompt.labels) if p is not None]
            prompt = Prompt(
                np.concatenate(points) if points else None,
                np.concatenate(labels) if labels else None,
                previous.box,
            )
        prompt.check(self.video_size, where)
        return self._add_prompt(frame_idx, obj_id, prompt)

    def add_mask(self, frame_idx: int, obj_id: int, mask) -> FrameResult:
        """A boolean ``mask (H, W)`` at the video's resolution for an object on a frame."""
        frame_idx, obj_id = self._check_frame(frame_idx), check_obj_id(obj_id)
        where = f"object {obj_id}, frame {frame_idx}"
        prompt = Prompt.make(mask=mask, where=where)
        prompt.check(self.video_size, where)
        return self._add_prompt(frame_idx, obj_id, prompt)

    def _add_prompt(self, frame_idx: int, obj_id: int, prompt: Prompt) -> FrameResult:
        obj = self._objects.get(obj_id) or _Object(self.core.new_bank())
        initial = frame_idx not in obj.tracked
        prev = obj.pending.get(frame_idx)
        prev_logits = prev.logits if prev is not None else obj.outputs.get(frame_idx, (None,))[0]
        out = self.core.prompt(
            self._frame(frame_idx),
            obj.bank,
            prompt,
            initial=initial,
            prev_logits=prev_logits,
            reverse=obj.tracked.get(frame_idx, False),
            num_frames=self.num_frames,
        )
        out.prompted = initial or self.settings.corrections_as_prompts
        self._objects[obj_id] = obj
        obj.inputs[frame_idx] = prompt
        obj.pending[frame_idx] = out
        obj.outputs[frame_idx] = (out.logits, out.object_score)
        return self.result(frame_idx)

    # ------------------------------------------------------------------ propagation
    def _commit(self) -> None:
        """Encode prompted frames into memory, once the user is done with them: the objects prompted on a
        frame in one batch, as the live tracker does (so both give the same numbers, batching included)."""
        by_frame: dict[int, list[ObjectOutput]] = {}
        for obj in self._objects.values():
            for frame_idx, out in obj.pending.items():
                by_frame.setdefault(frame_idx, []).append(out)
        for frame_idx, outputs in by_frame.items():
            self.core.encode_prompted(self._frame(frame_idx), outputs)
        for obj_id, obj in self._objects.items():
            for frame_idx, out in obj.pending.items():  # in prompting order, which memory attention sees
                out.remember(obj.bank, frame_idx)
            obj.pending.clear()
            if not obj.bank.prompted_frames:
                raise PromptError(f"object {obj_id} has no prompted frame: add clicks, a box or a mask first")

    def propagate(
        self,
        start_frame: int | None = None,
        max_frames: int | None = None,
        reverse: bool = False,
        from_first_prompt: bool = False,
    ) -> Iterator[FrameResult]:
        """Track every object frame by frame and yield each frame's result.

        Starts at ``start_frame`` (default: the earliest prompted frame) and covers up to ``max_frames``
        frames after it (default: to the end, or to frame 0 when ``reverse``). Frames where an object has
        a prompt or a correction keep that result. With ``from_first_prompt``, an object is tracked only
        once the propagation has passed its first prompted frame (its last, going backward) and is empty
        before: objects that appear later in the video (YouTube-VOS, LVOS) are not searched for in frames
        before they appear, as SAM 2's per-object evaluation does.
        """
        if not self._objects:
            raise PromptError("no objects to track: add clicks, a box or a mask first")
        self._commit()
        if start_frame is None:
            start_frame = self._first_prompted_frame()
        start_frame = self._check_frame(start_frame)
        limit = self.num_frames if max_frames is None else max_frames
        if reverse:
            order = range(start_frame, max(start_frame - limit, 0) - 1, -1) if start_frame > 0 else range(0)
        else:
            order = range(start_frame, min(start_frame + limit, self.num_frames - 1) + 1)
        for frame_idx in order:
            yield self._step(frame_idx, reverse, from_first_prompt)

    def propagate_both(self, start_frame: int | None = None) -> Iterator[FrameResult]:
        """Forward from ``start_frame`` (default: earliest prompt) to the end, then backward to frame 0."""
        if start_frame is None and self._objects:
            self._commit()
            start_frame = self._first_prompted_frame()
        yield from self.propagate(start_frame)
        if start_frame:
            yield from self.propagate(start_frame - 1, reverse=True)

    def _first_prompted_frame(self) -> int:
        return min(min(o.bank.prompted_frames) for o in self._objects.values())

    def _step(self, frame_idx: int, reverse: bool, from_first_prompt: bool = False) -> FrameResult:
        def started(obj: _Object) -> bool:
            if not from_first_prompt:
                return True
            return frame_idx <= max(obj.inputs) if reverse else frame_idx >= min(obj.inputs)

        to_track = [obj for obj in self._objects.values() if frame_idx not in obj.inputs and started(obj)]
        if to_track:
            frame = self._frame(frame_idx)
            outputs = self.core.track(frame, [o.bank for o in to_track], reverse, self.num_frames)
            for obj, out in zip(to_track, outputs):
                out.remember(obj.bank, frame_idx)
                obj.outputs[frame_idx] = (out.logits.to(self._storage), out.object_score)
        for obj in filter(started, self._objects.values()):
            obj.tracked[frame_idx] = reverse
            if not self.settings.keep_history:
                self._forget(obj, frame_idx, reverse)
        return self.result(frame_idx)

    def _forget(self, obj: _Object, frame_idx: int, reverse: bool) -> None:
        """Drop what neither this propagation nor one starting next to a prompt can use any more."""
        step = -1 if reverse else 1
        anchors = [(frame_idx, reverse), (frame_idx + step, reverse)]  # redo this frame, or go on
        anchors += [a for t in obj.inputs for a in ((t + 1, False), (t - 1, True))]
        obj.bank.prune(anchors, self.num_frames)
        for t in [t for t in obj.outputs if t not in obj.inputs and t != frame_idx]:
            del obj.outputs[t]

    @property
    def _storage(self) -> torch.device:
        device = self.settings.memory.storage_device
        return torch.device(device) if device is not None else self.core.device

    # ------------------------------------------------------------------ frames and results
    def _frame(self, frame_idx: int) -> EncodedFrame:
        if self._encoded is None or self._encoded.index != frame_idx:
            self._encoded = self.core.encode(self.source[frame_idx].image, frame_idx)
        return self._encoded

    def result(self, frame_idx: int) -> FrameResult:
        """The current prediction on a frame: every object's logits at video resolution; objects without a
        prediction there are empty (logit ``NO_OBJ_SCORE``)."""
        frame_idx = self._check_frame(frame_idx)
        device = self.core.device
        if not self._objects:
            h, w = self.video_size
            return FrameResult(frame_idx, [], torch.zeros(0, 1, h, w, device=device), torch.zeros(0))
        low = (self.core.model.image_size // 4,) * 2  # the decoder's output size
        logits, scores = [], []
        for obj in self._objects.values():
            stored, score = obj.outputs.get(frame_idx, (None, NO_OBJ_SCORE))
            logits.append(empty_logits(1, low, device) if stored is None else stored.to(device))
            scores.append(score)
        video = output_logits(torch.cat(logits), self.video_size, self.settings.non_overlap)
        return FrameResult(frame_idx, self.obj_ids, video, torch.tensor(scores))

    def close(self) -> None:
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
