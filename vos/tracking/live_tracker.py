"""The live tracker: frames arrive one at a time and never end; memory and time per frame stay flat."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

from streams import Frame

from ..model.interface import TrackingModel
from .core import EncodedFrame, InferenceCore, TrackerSettings
from .prompts import Prompt, PromptError, check_obj_id
from .results import FrameResult


class FrameSizeError(ValueError):
    """A frame whose size differs from the stream's; the tracker's state is unchanged."""


class StreamTracker(ABC):
    """A tracker of frames that arrive one at a time: :meth:`step` takes the next one."""

    @abstractmethod
    def step(self, image: np.ndarray, prompts: Mapping[int, Prompt] | None = None) -> FrameResult:
        """The next frame ``(H, W, 3)`` RGB ``uint8``, with prompts by object id; its result."""

    def track(self, frames: Iterable[Frame], prompts: Mapping[int, Prompt] | None = None) -> Iterator[tuple[Frame, FrameResult]]:
        """Step through ``frames`` (a source, say), ``prompts`` on the first; yield each frame with its result."""
        for i, frame in enumerate(frames):
            yield frame, self.step(frame.image, prompts if i == 0 else None)


class LiveTracker(StreamTracker):
    """Track objects in a stream with a per-frame :meth:`step` (or :meth:`track` over a source).

    Each object keeps only what SAM 2's memory selection can still use (see :class:`memory.MemoryBank`),
    so a run of any length holds a constant amount of memory. Objects can be added, re-prompted and
    removed at any frame without disturbing the others.

    Example::

        tracker = LiveTracker(model)
        result = tracker.step(first_frame, prompts={1: Prompt.make(points=[[320, 240]])})
        for frame in frames:
            result = tracker.step(frame)
    """

    def __init__(self, model: TrackingModel, settings: TrackerSettings | None = None) -> None:
        settings = settings or TrackerSettings.live()
        if settings.keep_history:  # a setting the tracker would otherwise silently ignore
            raise ValueError("keep_history=True is for the offline predictor: the live tracker's memory is always "
                             "bounded (use TrackerSettings.live(...) or keep_history=False)")
        self.core = InferenceCore(model, settings)
        self.settings = self.core.settings
        self.frame_index = -1  # index of the last frame stepped
        self.size: tuple[int, int] | None = None

    @property
    def obj_ids(self) -> list[int]:
        return self.core.obj_ids

    def remove(self, obj_id: int) -> None:
        """Stop tracking an object; the others are unaffected."""
        self.core.remove(obj_id)

    def reset(self) -> None:
        """Forget every object and restart frame numbering."""
        self.core.objects.clear()
        self.frame_index = -1
        self.size = None

    def memory_bytes(self) -> int:
        return self.core.memory_bytes()

    def step(
        self,
        image: np.ndarray,
        prompts: Mapping[int, Prompt] | None = None,
        discover: Callable[[EncodedFrame, FrameResult], Mapping[int, Prompt]] | None = None,
    ) -> FrameResult:
        """Process the next frame ``(H, W, 3)`` RGB ``uint8``.

        ``prompts`` maps object ids to a :class:`Prompt` on this frame. A new id starts an object from its
        prompt (as SAM does, without memory); for a tracked object the frame is tracked first and the
        clicks then correct it, or a mask replaces it (clicks given with it refine it); either way the frame
        becomes a prompted memory.
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
        if not self.core.objects and not prompts and discover is None:
            raise PromptError(f"frame {index}: nothing to track yet; give prompts for the first objects")
        self.core.track_frame(self.core.encode(image, index), prompts, discover=discover)
        self.frame_index, self.size = index, size
        return self.core.result(index, size)
