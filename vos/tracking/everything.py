"""Tracking everything: the automatic mask generator finds the objects on the first frame, and again every
``every`` frames for objects that entered since; the live tracker follows them all.

A mask of the generator is a **new object** when its area is at least ``min_area`` pixels and at most
``max_covered`` of it lies under the masks already tracked on that frame; new masks are taken best first
(the generator's order) and each one taken covers its pixels for the next, so nested or overlapping
candidates do not start two objects. Ids count up from 1 and are never reused. The generator decodes the
tracker's own encoding of the frame (:meth:`MaskGenerator.generate_from_features`), so a search costs the
decoder passes of the click grid and nothing more. Objects judged absent for ``forget_after`` frames in a
row are dropped; with at most ``max_objects`` at a time, memory stays bounded on endless streams. The
tracker counts what became of the candidates of all its searches (:meth:`EverythingTracker.search_summary`),
so a run that finds nothing can say which filter removed them.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..image.mask_generator import FilterCounts, MaskGenerator
from ..model.sam2 import SAM2Model
from .core import EncodedFrame, TrackerSettings
from .live_tracker import LiveTracker, StreamTracker
from .prompts import Prompt, PromptError
from .results import FrameResult


@dataclass(frozen=True)
class EverythingSettings:
    """How objects are found and dropped.

    ``every``: frames between searches for new objects (0: the first frame only). ``points_per_side``: the
    generator's click grid (``points_per_side^2`` clicks) and ``pred_iou_thresh``, ``stability_score_thresh``
    its filters (``None``: the model's, see :func:`vos.image.mask_generator.generator_setting`). ``max_covered``: the largest fraction of a
    candidate mask already covered by tracked masks for it to count as new. ``min_area``: smallest new
    object, in pixels. ``max_objects``: objects tracked at once. ``forget_after``: frames an object may
    stay absent before it is dropped (0: never). ``max_id``: the last id handed out (255 for palette PNGs).
    """

    every: int = 15
    points_per_side: int = 16
    pred_iou_thresh: float | None = None
    stability_score_thresh: float | None = None
    max_covered: float = 0.2
    min_area: int = 100
    max_objects: int = 32
    forget_after: int = 150
    max_id: int | None = None

    def __post_init__(self) -> None:
        if self.every < 0 or self.points_per_side < 1 or self.max_objects < 1 or self.forget_after < 0:
            raise ValueError(f"every, forget_after >= 0 and points_per_side, max_objects >= 1 are needed: {self}")
        if not 0.0 <= self.max_covered < 1.0:
            raise ValueError(f"max_covered is a fraction in [0, 1), got {self.max_covered}")


class EverythingTracker(StreamTracker):
    """Find and track every object of a stream, frame by frame.

    Example::

        tracker = EverythingTracker(model)
        for frame, result in tracker.track(source):   # every object found so far, with stable ids
            ...
    """

    def __init__(
        self,
        model: SAM2Model,
        settings: EverythingSettings | None = None,
        tracker_settings: TrackerSettings | None = None,
        generator: MaskGenerator | None = None,
    ) -> None:
        self.settings = settings or EverythingSettings()
        self.tracker = LiveTracker(model, tracker_settings)
        s = self.settings
        self.generator = generator or MaskGenerator(model, points_per_side=s.points_per_side,
                                                    pred_iou_thresh=s.pred_iou_thresh,
                                                    stability_score_thresh=s.stability_score_thresh)
        self.next_id = 1
        self.searches = 0
        # What became of the candidates of every search so far: the generator's filters, then the new-object rule.
        self.counts: FilterCounts | None = None
        self.rejected: Counter[str] = Counter()
        self._absent: dict[int, int] = {}

    @property
    def obj_ids(self) -> list[int]:
        return self.tracker.obj_ids

    def step(self, image: np.ndarray, prompts: dict | None = None) -> FrameResult:
        """Track the next frame ``(H, W, 3)`` RGB uint8, first looking for new objects when a search is due."""
        if prompts:
            raise PromptError("tracking everything finds the objects itself: it takes no prompts")
        index = self.tracker.frame_index + 1
        every = self.settings.every
        due = index == 0 or (every > 0 and index % every == 0)
        if due:
            discover = self._discover
        elif not self.tracker.obj_ids:  # nothing found yet and no search due: a frame with no objects
            discover = _find_nothing
        else:
            discover = None
        result = self.tracker.step(image, discover=discover)
        self._forget(result)
        return result

    def _discover(self, frame: EncodedFrame, tracked: FrameResult) -> dict[int, Prompt]:
        """New objects on a frame: generator masks that the tracked masks ``tracked`` leave uncovered."""
        self.searches += 1
        s = self.settings
        room = s.max_objects - len(tracked.obj_ids)
        if s.max_id is not None:
            room = min(room, s.max_id - self.next_id + 1)
        if room <= 0:
            return {}
        covered = tracked.masks.any(axis=0) if tracked.obj_ids else np.zeros(frame.size, bool)
        generated = self.generator.run_from_features(frame.features, frame.size)
        self.counts = generated.counts if self.counts is None else self.counts + generated.counts
        found = {}
        for mask in new_objects(generated.masks, covered, s.max_covered, s.min_area, room, self.rejected):
            found[self.next_id] = Prompt.make(mask=mask)
            self.next_id += 1
        return found

    def search_summary(self, option: Callable[[str], str] = str) -> str:
        """What the searches so far did with their candidates, e.g. ``"1 search: 0 masks kept of 256 candidates:
        250 below predicted IoU 0.8, 6 below stability 0.95; lower pred_iou_thresh / stability_score_thresh"``;
        ``option`` spells the settings (see :meth:`FilterCounts.line`)."""
        text = f"{self.searches} search{'es' * (self.searches != 1)}"
        if self.counts is not None:
            text += ": " + self.counts.line(option)
        if self.rejected:
            text += "; of the masks kept, " + ", ".join(f"{n} {why}" for why, n in self.rejected.items())
        return text

    def _forget(self, result: FrameResult) -> None:
        if not self.settings.forget_after or not result.obj_ids:
            return
        present = result.visible & result.masks.reshape(len(result.obj_ids), -1).any(axis=1)
        for obj_id, seen in zip(result.obj_ids, present):
            self._absent[obj_id] = 0 if seen else self._absent.get(obj_id, 0) + 1
            if self._absent[obj_id] >= self.settings.forget_after:
                self.tracker.remove(obj_id)
                del self._absent[obj_id]


def new_objects(records: list[dict], covered: np.ndarray, max_covered: float, min_area: int, limit: int,
                rejected: Counter[str] | None = None) -> list[np.ndarray]:
    """The generator ``records`` (binary masks, best first) that start new objects: at least ``min_area``
    pixels, at most ``max_covered`` of them under ``covered (H, W)`` (the tracked masks) or under a mask
    taken before; at most ``limit`` of them. ``rejected`` counts the others by reason."""
    covered = covered.copy()
    out = []
    for i, record in enumerate(records):
        if len(out) == limit:
            _count(rejected, "beyond max_objects", len(records) - i)
            break
        mask, area = record["segmentation"], record["area"]
        if area < min_area:
            _count(rejected, f"smaller than {min_area} px")
        elif np.count_nonzero(mask & covered) > max_covered * area:
            _count(rejected, "already covered")
        else:
            out.append(mask)
            covered |= mask
    return out


def _count(counter: Counter[str] | None, why: str, n: int = 1) -> None:
    if counter is not None:
        counter[why] += n


def _find_nothing(frame: EncodedFrame, tracked: FrameResult) -> dict[int, Prompt]:
    return {}
