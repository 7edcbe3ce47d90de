"""The live tracker: frames arrive one at a time and never end; memory and time per frame stay flat."""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from memory import MemoryBank

from .errors import UnknownNameError
from .inference_core import EncodedFrame, InferenceCore, ObjectOutput, TrackerSettings
from .model import SAM2Model
from .prompts import Prompt, PromptError, check_obj_id
from .results import FrameResult
from .transforms import output_logits


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
        self.core = InferenceCore(model, settings)
        self.settings = self.core.settings
        self._banks: dict[int, MemoryBank] = {}
        self.frame_index = -1  # index of the last frame stepped
        self.size: tuple[int, int] | None = None

    @property
    def obj_ids(self) -> list[int]:
        return list(self._banks)

    def remove(self, obj_id: int) -> None:
        """Stop tracking an object; the others are unaffected."""
        if obj_id not in self._banks:
            raise UnknownNameError(f"object {obj_id} is not tracked (objects: {self.obj_ids})")
        del self._banks[obj_id]

    def reset(self) -> None:
        """Forget every object and restart frame numbering."""
        self._banks.clear()
        self.frame_index = -1
        self.size = None

    def memory_bytes(self) -> int:
        return sum(bank.nbytes() for bank in self._banks.values())

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
        the frame as ``prompts`` do (this is how :class:`vos.everything.EverythingTracker` adds objects).
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
        if not self._banks and not prompts and discover is None:
            raise PromptError(f"frame {index}: nothing to track yet; give prompts for the first objects")

        frame = self.core.encode(image, index)
        tracked_ids = [i for i in self._banks if not (i in prompts and prompts[i].mask is not None)]
        tracked = self.core.track(frame, [self._banks[i] for i in tracked_ids], reverse=False)
        outputs: dict[int, ObjectOutput] = dict(zip(tracked_ids, tracked))
        if discover is not None:
            found = dict(discover(frame, self._result(index, tracked_ids, tracked, size)))
            for obj_id, prompt in found.items():
                if obj_id in self._banks or obj_id in prompts:
                    raise PromptError(f"frame {index}: a discovered object has id {obj_id}, which is in use")
                prompt.check(size, f"discovered object {obj_id}, frame {index}")
            prompts.update(found)
        banks = dict(self._banks)
        prompted = []
        for obj_id, prompt in prompts.items():
            bank = banks.get(obj_id) or self.core.new_bank()
            banks[obj_id] = bank
            current = outputs.get(obj_id)
            out = self.core.prompt(
                frame,
                bank,
                prompt,
                initial=current is None,
                prev_logits=None if current is None else current.logits,
            )
            out.prompted = current is None or self.settings.corrections_as_prompts
            outputs[obj_id] = out
            prompted.append(out)
        self.core.encode_prompted(frame, prompted)

        for obj_id, bank in banks.items():
            outputs[obj_id].remember(bank, index)
            bank.prune([(index + 1, False)])
        self._banks = banks
        self.frame_index, self.size = index, size
        return self._result(index, list(banks), [outputs[i] for i in banks], size)

    def _result(self, index: int, obj_ids: list[int], outputs: list[ObjectOutput], size: tuple[int, int]) -> FrameResult:
        if not outputs:  # nothing tracked (yet): a frame with no objects
            return FrameResult(index, [], torch.empty(0, 1, *size), torch.empty(0))
        logits = output_logits(torch.cat([o.logits for o in outputs]), size, self.settings.non_overlap)
        return FrameResult(index, list(obj_ids), logits, torch.tensor([o.object_score for o in outputs]))
