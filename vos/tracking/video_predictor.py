"""The offline video predictor: prompts on any frame, propagation forward and backward, many objects."""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator

import numpy as np

from streams import SeekableSource, open_video

from ..errors import UnknownNameError
from ..model.sam2 import SAM2Model
from ..model.transforms import to_video_resolution
from .core import EncodedFrame, InferenceCore, TrackedObject, TrackerSettings
from .prompts import (
    FramePrompt,
    Prompt,
    PromptError,
    check_frame_index,
    check_obj_id,
    merge_prompts,
)
from .results import FrameResult


class VideoPredictor:
    """Segment and track objects through a video file or a folder of frames.

    Frames are decoded on demand; the image encoder runs once per frame for all objects, and objects
    whose memories line up go through memory attention and the decoder as one batch. The features of the
    ``keep_encoded`` frames used last are kept (an interactive front-end going back and forth between a
    few frames encodes each once).

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
        keep_encoded: int = 1,
    ) -> None:
        if keep_encoded < 1:
            raise ValueError(f"keep_encoded must be at least 1, got {keep_encoded}")
        self.core = InferenceCore(model, settings, seekable=True)
        self.settings = self.core.settings
        self.source = video if isinstance(video, SeekableSource) else open_video(video)
        self.num_frames = len(self.source)
        self.video_size: tuple[int, int] = tuple(self.source.size)
        self._objects: dict[int, TrackedObject] = {}
        self._encoded: OrderedDict[int, EncodedFrame] = OrderedDict()
        self._keep_encoded = keep_encoded

    # ------------------------------------------------------------------ objects
    @property
    def obj_ids(self) -> list[int]:
        return list(self._objects)

    def _check_frame(self, frame_idx: int) -> int:
        return check_frame_index(frame_idx, self.num_frames)

    def _object(self, obj_id: int) -> TrackedObject:
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
        return sum(obj.nbytes() for obj in self._objects.values())

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

    def add_prompts(self, prompts: Iterable[FramePrompt]) -> None:
        """Many prompts, as ``vos track`` applies them: one per object and frame (:func:`merge_prompts`), in the
        order first given; a mask and then clicks or a box on the same object and frame: the clicks refine
        the mask (``add_mask``, then ``add_points`` with ``clear=False``)."""
        for p in merge_prompts(list(prompts)):
            prompt = p.prompt
            if prompt.mask is not None:
                self.add_mask(p.frame, p.obj_id, prompt.mask)
            if prompt.points is not None or prompt.box is not None:
                self.add_points(p.frame, p.obj_id, prompt.points, prompt.labels, prompt.box, clear=prompt.mask is None)

    def candidates(self, frame_idx: int, obj_id: int) -> list[tuple[np.ndarray, float]]:
        """The masks the decoder offered for the object's latest prompt on a frame, while the user is still
        clicking there (until propagation): ``(mask (H, W) bool, predicted IoU)`` for each, the chosen one
        (the highest IoU) among them; empty when the prompt was not ambiguous (several clicks, a box, a mask)
        and the decoder gave one mask."""
        frame_idx = self._check_frame(frame_idx)
        pending = self._object(obj_id).pending.get(frame_idx)
        if pending is None or pending.candidates is None:
            return []
        logits, ious = pending.candidates
        masks = (to_video_resolution(logits[:, None].to(self.core.device), self.video_size)[:, 0] > 0).cpu().numpy()
        return [(masks[k], float(ious[k])) for k in range(len(masks))]

    def _add_prompt(self, frame_idx: int, obj_id: int, prompt: Prompt) -> FrameResult:
        # Not tracked first and not committed: the user may go on clicking on this frame.
        self.core.step(self._frame(frame_idx), self._objects, {obj_id: prompt}, track=False, commit=False,
                       num_frames=self.num_frames)
        return self.result(frame_idx)

    # ------------------------------------------------------------------ propagation
    def _commit(self) -> None:
        """Encode prompted frames into memory, once the user is done with them."""
        self.core.commit(self._objects, self._frame)
        for obj_id, obj in self._objects.items():
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
        self.core.step(self._frame(frame_idx), self._objects, reverse=reverse, num_frames=self.num_frames,
                       from_first_prompt=from_first_prompt)
        return self.result(frame_idx)

    # ------------------------------------------------------------------ frames and results
    def _frame(self, frame_idx: int) -> EncodedFrame:
        encoded = self._encoded.get(frame_idx)
        if encoded is None:
            image = self.source.squashed(frame_idx, self.core.model.image_size)
            if image is None:
                image = self.source[frame_idx].image
            encoded = self._encoded[frame_idx] = self.core.encode(image, frame_idx, self.video_size)
            while len(self._encoded) > self._keep_encoded:
                self._encoded.popitem(last=False)
        self._encoded.move_to_end(frame_idx)
        return encoded

    def result(self, frame_idx: int) -> FrameResult:
        """The current prediction on a frame: every object's logits at video resolution; objects without a
        prediction there are empty (logit ``NO_OBJ_SCORE``)."""
        frame_idx = self._check_frame(frame_idx)
        return self.core.result(frame_idx, self.video_size, {i: o.outputs.get(frame_idx) for i, o in self._objects.items()})

    def close(self) -> None:
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
