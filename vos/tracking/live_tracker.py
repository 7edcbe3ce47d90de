"""The live tracker: frames arrive one at a time and never end; memory and time per frame stay flat."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..errors import UnknownNameError
from ..model.sam2 import SAM2Model
from .core import EncodedFrame, InferenceCore, TrackedObject, TrackerSettings
from .prompts import Prompt, PromptError, check_obj_id
from .results import FrameResult


class FrameSizeError(ValueError):
    """A frame whose size differs from the stream's; the tracker's state is unchanged."""


class LiveTracker:
    """Track objects in a stream with a per-frame :meth:`step`.

    Each object keeps only what SAM 2's memory selection can still use (see :class:`memory.MemoryBank`),
    so a run of any length holds a constant amount of memory. Objects can be added, re-prompted and
    removed at any frame without disturbing the others.

    Example::

        tracker = LiveTracker(model)
        result = tracker.step(first_frame, prompts={1: Prompt.make(points=[[320, 240]])})
        for frame in frames:
            result = tracker.step(frame)
    """

    def __init__(self, model: SAM2Model, settings: TrackerSettings | None = None) -> None:
        settings = settings or TrackerSettings.live()
        if settings.keep_history:  # a setting the tracker would otherwise silently ignore
            raise ValueError("keep_history=True is for the offline predictor: the live tracker's memory is always "
                             "bounded (use TrackerSettings.live(...) or keep_history=False)")
        self.core = InferenceCore(model, settings, seekable=False)
        self.settings = self.core.settings
        self._objects: dict[int, TrackedObject] = {}
        self.frame_index = -1  # index of the last frame stepped
        self.size: tuple[int, int] | None = None

    @property
    def obj_ids(self) -> list[int]:
        return list(self._objects)

    def remove(self, obj_id: int) -> None:
        """Stop tracking an object; the others are unaffected."""
        if obj_id not in self._objects:
            raise UnknownNameError(f"object {obj_id} is not tracked (objects: {self.obj_ids})")
        del self._objects[obj_id]

    def reset(self) -> None:
        """Forget every object and restart frame numbering."""
        self._objects.clear()
        self.frame_index = -1
        self.size = None

    def memory_bytes(self) -> int:
        return sum(obj.nbytes() for obj in self._objects.values())

    def step(
        self,
        image: np.ndarray,
        prompts: Mapping[int, Prompt] | None = None,
        discover: Callable[[EncodedFrame, FrameResult], Mapping[int, Prompt]] | None = None,
    ) -> FrameResult:
        """Process the next frame ``(H, W, 3)`` RGB ``uint8``.

        ``prompts`` maps object ids to a :class:`Prompt` on this frame. A new id starts an object from its
        prompt (as SAM does, without memory); for a tracked object the frame is tracked first and the
        clicks then correct it, or a mask replaces it; either way the frame becomes a prompted memory.
        Everything is checked before anything changes: a bad prompt or a frame of another size raises and
        leaves the tracker as it was.

        ``discover``, when given, is called once the tracked objects are tracked on this frame, with the
        encoded frame and their result; the prompts it returns, for ids not in use, start new objects on
        the frame as ``prompts`` do (this is how :class:`vos.tracking.everything.EverythingTracker` adds objects).
        """
        prompts = dict(prompts or {})
        size = tuple(image.shape[:2])
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise FrameSizeError(f"frame {self.frame_index + 1}: expected (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
        if self.size is not None and size != self.size:
            raise FrameSizeError(
                f"frame {self.frame_index + 1} is {size[1]}x{size[0]}, the stream is {self.size[1]}x{self.size[0]}"
            )
        index = self.frame_index + 1
        for obj_id, prompt in prompts.items():
            where = f"object {check_obj_id(obj_id, f'frame {index}')}, frame {index}"
            if not isinstance(prompt, Prompt):
                raise PromptError(f"{where}: expected a vos.Prompt (Prompt.make(points=...)), got {type(prompt).__name__}")
            prompt.check(size, where)
        if not self._objects and not prompts and discover is None:
            raise PromptError(f"frame {index}: nothing to track yet; give prompts for the first objects")
        frame = self.core.encode(image, index)
        self.core.step(frame, self._objects, prompts, discover=discover)
        self.frame_index, self.size = index, size
        return self.core.result(index, size, {i: o.outputs[index] for i, o in self._objects.items()})
