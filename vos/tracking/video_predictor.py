"""The offline video predictor: prompts on any frame, propagation forward and backward, many objects."""
from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import replace

import numpy as np

from streams import Frame, SeekableSource, open_video

from ..model.interface import TrackingModel
from ..model.transforms import to_video_resolution
from .core import EncodedFrame, InferenceCore, TrackerSettings
from .prompts import (
    FramePrompt,
    Prompt,
    PromptError,
    check_frame_index,
    check_obj_id,
    merge_prompts,
)
from .results import FrameResult

DIRECTIONS = ("forward", "backward", "both")


class VideoPredictor:
    """Segment and track objects through a video file or a folder of frames.

    Frames are decoded on demand; the image encoder runs once per frame for all objects, and objects
    whose memories line up go through memory attention and the decoder as one batch. The features of the
    ``keep_encoded`` frames used last are kept (an interactive front-end going back and forth between a
    few frames encodes each once).

    Example::

        predictor = VideoPredictor(model, "clip.mp4")
        predictor.add_points(0, obj_id=1, points=[[210, 350]])
        for frame, result in predictor.track(direction="both"):
            save(frame.image, result.masks)
    """

    def __init__(
        self,
        model: TrackingModel,
        video: str | os.PathLike | SeekableSource,
        settings: TrackerSettings | None = None,
        keep_encoded: int = 1,
    ) -> None:
        if keep_encoded < 1:
            raise ValueError(f"keep_encoded must be at least 1, got {keep_encoded}")
        self.source = video if isinstance(video, SeekableSource) else open_video(video)
        self.num_frames = len(self.source)
        self.video_size: tuple[int, int] = tuple(self.source.size)
        self.core = InferenceCore(model, settings, num_frames=self.num_frames)
        self.settings = self.core.settings
        # Each frame's features, with the frame when it was decoded at the video's resolution for them.
        self._encoded: OrderedDict[int, tuple[Frame | None, EncodedFrame]] = OrderedDict()
        self._keep_encoded = keep_encoded

    # ------------------------------------------------------------------ objects
    @property
    def obj_ids(self) -> list[int]:
        return self.core.obj_ids

    def remove_object(self, obj_id: int) -> list[int]:
        """Forget an object entirely; the others are unaffected. Returns the frames it had prompts on."""
        return sorted(self.core.remove(obj_id).inputs)

    def reset(self) -> None:
        """Forget every object and prompt."""
        self.core.objects.clear()

    def memory_bytes(self) -> int:
        """Bytes held by all memory banks and stored outputs."""
        return self.core.memory_bytes()

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

        With ``clear=False`` the clicks and box join those already on the frame by :meth:`Prompt.then`'s rule
        and correct the frame's current prediction, as SAM 2 feeds it back; after a mask, they refine the
        mask's prediction. On a frame the object was already tracked on, the clicks correct the tracked
        mask. Returns every object's masks on the frame.
        """
        frame_idx, obj_id, where = self._located(frame_idx, obj_id)
        prompt = Prompt.make(points, labels, box, where=where)
        previous = self.core.objects[obj_id].inputs.get(frame_idx) if obj_id in self.core.objects else None
        if not clear and previous is not None and previous.has_clicks:
            # The earlier clicks, not the mask they refined: that mask is the frame's prediction, which the
            # clicks refine.
            prompt = replace(previous, mask=None).then(prompt, where)
        self._apply([(frame_idx, obj_id, prompt, where)])
        return self.result(frame_idx)

    def add_mask(self, frame_idx: int, obj_id: int, mask) -> FrameResult:
        """A boolean ``mask (H, W)`` at the video's resolution for an object on a frame."""
        frame_idx, obj_id, where = self._located(frame_idx, obj_id)
        self._apply([(frame_idx, obj_id, Prompt.make(mask=mask, where=where), where)])
        return self.result(frame_idx)

    def add_prompts(self, prompts: Iterable[FramePrompt]) -> None:
        """Many prompts, as ``vos track`` applies them: one per object and frame (:func:`merge_prompts`), in the
        order first given; a mask and then clicks or a box on the same object and frame: the clicks refine
        the mask. Every prompt is checked before any is applied."""
        located = [(p, self._located(p.frame, p.obj_id)) for p in merge_prompts(list(prompts))]
        self._apply([(frame_idx, obj_id, p.prompt, where) for p, (frame_idx, obj_id, where) in located])

    def _located(self, frame_idx, obj_id) -> tuple[int, int, str]:
        frame_idx, obj_id = check_frame_index(frame_idx, self.num_frames), check_obj_id(obj_id)
        return frame_idx, obj_id, f"object {obj_id}, frame {frame_idx}"

    def _apply(self, prompts: list[tuple[int, int, Prompt, str]]) -> None:
        """``(frame, object, prompt, where)`` checked, then applied in order: not tracked first and not
        committed, as the user may go on clicking on the frame."""
        for *_, prompt, where in prompts:
            prompt.check(self.video_size, where)
        for frame_idx, obj_id, prompt, _ in prompts:
            self.core.apply_prompts(self._frame(frame_idx)[1], {obj_id: prompt})

    def candidates(self, frame_idx: int, obj_id: int) -> list[tuple[np.ndarray, float]]:
        """The masks the decoder offered for the object's latest prompt on a frame, while the user is still
        clicking there (until propagation): ``(mask (H, W) bool, predicted IoU)`` for each, the chosen one
        (the highest IoU) among them; empty when the prompt was not ambiguous (several clicks, a box, a mask)
        and the decoder gave one mask."""
        frame_idx = check_frame_index(frame_idx, self.num_frames)
        pending = self.core.object(obj_id).pending.get(frame_idx)
        if pending is None or pending.candidates is None:
            return []
        logits, ious = pending.candidates
        masks = (to_video_resolution(logits[:, None].to(self.core.device), self.video_size)[:, 0] > 0).cpu().numpy()
        return [(masks[k], float(ious[k])) for k in range(len(masks))]

    # ------------------------------------------------------------------ propagation
    def track(
        self,
        start_frame: int | None = None,
        *,
        direction: str = "forward",
        max_frames: int | None = None,
        from_first_prompt: bool = False,
    ) -> Iterator[tuple[Frame, FrameResult]]:
        """Track every object frame by frame; yield each frame with its result, the frame decoded once for both.

        Starts at ``start_frame`` (default: the earliest prompted frame) and goes ``direction``: ``"forward"``
        to the end, ``"backward"`` to frame 0, or ``"both"``: forward to the end, then backward from the frame
        before ``start_frame`` to frame 0 (SAM 2's propagation both ways); each pass covers up to ``max_frames``
        frames after its first (default: all); as SAM 2's ``propagate_in_video``, a backward one from frame 0
        tracks nothing. Frames where an object has a prompt or a correction keep that
        result. With ``from_first_prompt``, an object is tracked only once the propagation has passed its
        first prompted frame (its last, going backward) and is empty before: objects that appear later in the
        video (YouTube-VOS, LVOS) are not searched for in frames before they appear, as SAM 2's per-object
        evaluation does.
        """
        for frame_idx in self._propagation(start_frame, direction, max_frames, from_first_prompt):
            frame = self._frame(frame_idx)[0]
            yield frame if frame is not None else self.source[frame_idx], self.result(frame_idx)

    def propagate(
        self,
        start_frame: int | None = None,
        max_frames: int | None = None,
        reverse: bool = False,
        from_first_prompt: bool = False,
    ) -> Iterator[FrameResult]:
        """The results of :meth:`track` forward, or backward with ``reverse``, without the frames (a source that
        squashes frames to the model's input itself is then never decoded at the video's resolution)."""
        direction = "backward" if reverse else "forward"
        for frame_idx in self._propagation(start_frame, direction, max_frames, from_first_prompt):
            yield self.result(frame_idx)

    def propagate_both(self, start_frame: int | None = None) -> Iterator[FrameResult]:
        """The results of :meth:`track` in both directions, without the frames."""
        for frame_idx in self._propagation(start_frame, "both", None, False):
            yield self.result(frame_idx)

    def _propagation(
        self, start_frame: int | None, direction: str, max_frames: int | None, from_first_prompt: bool
    ) -> Iterator[int]:
        """Track frame by frame in ``direction``; yields each frame's index once the frame is done."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        if not self.core.objects:
            raise PromptError("no objects to track: add clicks, a box or a mask first")
        self._commit()
        if start_frame is None:
            start_frame = min(min(o.bank.prompted_frames) for o in self.core.objects.values())
        start_frame = check_frame_index(start_frame, self.num_frames)
        limit = self.num_frames if max_frames is None else max_frames
        passes = []
        if direction != "backward":
            passes.append((range(start_frame, min(start_frame + limit, self.num_frames - 1) + 1), False))
        if direction != "forward" and start_frame > 0:  # backward from frame 0: nothing, as in SAM 2
            back = start_frame - 1 if direction == "both" else start_frame
            passes.append((range(back, max(back - limit, 0) - 1, -1), True))
        for order, reverse in passes:
            for frame_idx in order:
                self.core.track_frame(self._frame(frame_idx)[1], reverse=reverse, from_first_prompt=from_first_prompt)
                yield frame_idx

    def _commit(self) -> None:
        """Encode prompted frames into memory, once the user is done with them."""
        self.core.commit(lambda t: self._frame(t)[1])
        for obj_id, obj in self.core.objects.items():
            if not obj.bank.prompted_frames:
                raise PromptError(f"object {obj_id} has no prompted frame: add clicks, a box or a mask first")

    # ------------------------------------------------------------------ frames and results
    def _frame(self, frame_idx: int) -> tuple[Frame | None, EncodedFrame]:
        """The frame's features, and the frame itself when it was decoded at the video's resolution for them."""
        cached = self._encoded.get(frame_idx)
        if cached is None:
            frame, image = None, self.source.squashed(frame_idx, self.core.model.image_size)
            if image is None:
                frame = self.source[frame_idx]
                image = frame.image
            cached = self._encoded[frame_idx] = (frame, self.core.encode(image, frame_idx, self.video_size))
            while len(self._encoded) > self._keep_encoded:
                self._encoded.popitem(last=False)
        self._encoded.move_to_end(frame_idx)
        return cached

    def result(self, frame_idx: int) -> FrameResult:
        """The current prediction on a frame: every object's logits at video resolution; objects without a
        prediction there are empty (logit ``NO_OBJ_SCORE``)."""
        return self.core.result(check_frame_index(frame_idx, self.num_frames), self.video_size)

    def close(self) -> None:
        """Close the video, a source passed in included: the predictor owns the source it was given."""
        self.source.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
