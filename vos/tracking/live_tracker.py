"""The live trackers: frames arrive one at a time and never end; memory and time per frame stay flat. One
stream (:class:`LiveTracker`) or several served by one model (:class:`MultiStreamTracker`)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping

import numpy as np

from streams import Frame

from ..errors import UnknownNameError
from ..model.interface import TrackingModel
from .core import EncodedFrame, InferenceCore, TrackerSettings, track_frames
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
        prompts = self.check(image, prompts, discover)
        return self.advance(self.core.encode(image, self.frame_index + 1), prompts, discover)

    def check(
        self,
        image: np.ndarray,
        prompts: Mapping[int, Prompt] | None = None,
        discover: Callable[[EncodedFrame, FrameResult], Mapping[int, Prompt]] | None = None,
    ) -> dict[int, Prompt]:
        """Raise what :meth:`step` would raise for this frame and these prompts, changing nothing; the prompts
        as a dict."""
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
        return prompts

    def advance(
        self,
        frame: EncodedFrame,
        prompts: dict[int, Prompt],
        discover: Callable[[EncodedFrame, FrameResult], Mapping[int, Prompt]] | None = None,
    ) -> FrameResult:
        """:meth:`step` on the next frame, already encoded and :meth:`check`-ed."""
        self.core.track_frame(frame, prompts, discover=discover)
        return self._advanced(frame)

    def _advanced(self, frame: EncodedFrame) -> FrameResult:
        """The stream's state moved on to ``frame``, once its objects are tracked there; the frame's result."""
        self.frame_index, self.size = frame.index, frame.size
        return self.core.result(frame.index, frame.size)


class MultiStreamTracker:
    """Several streams tracked by one model, each step taking a frame of any of them.

    Each stream (by a key of the caller's: a name, a URL) is a :class:`LiveTracker` of its own, with its own
    objects, memory banks (bounded as always), frame numbering and frame size; streams may differ in size
    and rate, and start, stop or skip steps independently. With ``batch_frames``, the frames of one
    :meth:`step` go through the image encoder in one call (with a model that ``batches_images``), and the
    tracked objects of every stream through memory attention, the decoder and the memory encoder together
    (:func:`vos.tracking.core.track_frames`, the one per-frame policy of
    :meth:`~vos.tracking.core.InferenceCore.track_frame` on several streams; memory attention takes objects
    whose selections have one shape in one batch). A stream's results are those of a :class:`LiveTracker`
    given the same frames, to float rounding of the batches (masks alike, logits within about 1e-4); bit for
    bit with ``batch_frames=False``, which runs the streams one after another.

    Example::

        tracker = MultiStreamTracker(model)
        results = tracker.step({"door": door_frame, "yard": yard_frame},
                               prompts={"door": {1: Prompt.make(points=[[320, 240]])},
                                        "yard": {1: Prompt.make(box=[10, 10, 90, 60])}})
        results = tracker.step({"door": next_door_frame})  # the yard had no new frame
    """

    def __init__(
        self, model: TrackingModel, settings: TrackerSettings | None = None, batch_frames: bool = True
    ) -> None:
        self.model = model
        self.settings = settings or TrackerSettings.live()
        self.batch_frames = batch_frames
        self.streams: dict[Hashable, LiveTracker] = {}

    def __getitem__(self, key: Hashable) -> LiveTracker:
        if key not in self.streams:
            raise UnknownNameError(f"stream {key!r} is not tracked (streams: {list(self.streams)})")
        return self.streams[key]

    def remove(self, key: Hashable) -> None:
        """Stop tracking a stream and forget its objects; the others are unaffected."""
        self[key]  # raises for a stream not tracked
        del self.streams[key]

    def memory_bytes(self) -> int:
        return sum(t.memory_bytes() for t in self.streams.values())

    def check(self, key: Hashable, image: np.ndarray, prompts: Mapping[int, Prompt] | None = None) -> None:
        """Raise what :meth:`step` would raise for this stream's frame and prompts, changing nothing."""
        self._check(self.streams.get(key) or LiveTracker(self.model, self.settings), key, image, prompts)

    @staticmethod
    def _check(tracker: LiveTracker, key: Hashable, image: np.ndarray, prompts) -> dict[int, Prompt]:
        try:
            return tracker.check(image, prompts)
        except (FrameSizeError, PromptError) as exc:
            raise type(exc)(f"stream {key!r}, {exc}") from None

    def step(
        self, frames: Mapping[Hashable, np.ndarray], prompts: Mapping[Hashable, Mapping[int, Prompt]] | None = None
    ) -> dict[Hashable, FrameResult]:
        """The next frame ``(H, W, 3)`` RGB ``uint8`` of each stream in ``frames`` (a new key starts a stream),
        with prompts by stream and object id as :meth:`LiveTracker.step` takes them; each stream's result.
        Everything is checked before anything changes: a bad frame or prompt raises naming its stream and
        leaves every stream as it was (a job that must go on with the others checks each stream first with
        :meth:`check`)."""
        prompts = prompts or {}
        stray = [key for key in prompts if key not in frames]
        if stray:
            raise PromptError(f"stream {stray[0]!r}: prompts without a frame")
        trackers = {key: self.streams.get(key) or LiveTracker(self.model, self.settings) for key in frames}
        checked = {key: self._check(trackers[key], key, image, prompts.get(key)) for key, image in frames.items()}
        encoder = next(iter(trackers.values())).core if trackers else None
        encoded = encoder.encode_many(list(frames.values()), [trackers[k].frame_index + 1 for k in frames],
                                      batch=self.batch_frames) if encoder else []
        self.streams.update(trackers)
        if not self.batch_frames:
            return {key: trackers[key].advance(frame, checked[key]) for key, frame in zip(frames, encoded)}
        track_frames([(trackers[key].core, frame, checked[key]) for key, frame in zip(frames, encoded)])
        return {key: trackers[key]._advanced(frame) for key, frame in zip(frames, encoded)}
