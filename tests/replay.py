"""Replaying one scenario of prompts and propagations on an official video predictor and on vos's."""
from __future__ import annotations

import numpy as np
import torch

from oracle_free import max_diff
from streams import open_video
from vos.kernels import use_packed_kernels
from vos.transforms import preprocess
from vos.video_predictor import VideoPredictor


def replay(official, ours, folder, actions, settings, official_attrs=None, packed=False):
    """Run ``actions`` on both predictors; returns the list of (label, theirs, ours) logits.

    ``actions``: ``("points", frame, obj, points, labels)`` (see :func:`click`), ``("box", frame, obj, box)``,
    ``("mask", frame, obj, bool mask)``, ``("propagate", start, count, reverse)``.
    """
    for name, value in (official_attrs or {}).items():
        setattr(official, name, value)
    use_packed_kernels(ours, packed)
    video = open_video(folder)
    state = official.init_state(str(folder))
    # Same input pixels on both sides (the official loader resizes with PIL, see test_transforms).
    state["images"] = torch.cat([preprocess(video[i].image, ours.image_size) for i in range(len(video))])
    state["cached_features"] = {}
    predictor = VideoPredictor(ours, video, settings)
    pairs = []
    for kind, *args in actions:
        if kind == "points":
            frame, obj, points, labels = args
            _, _, theirs = official.add_new_points_or_box(state, frame, obj, points=points, labels=labels)
            pairs.append((f"{kind} {args[:2]}", theirs, predictor.add_points(frame, obj, points, labels).logits))
        elif kind == "box":
            frame, obj, box = args
            _, _, theirs = official.add_new_points_or_box(state, frame, obj, box=box)
            pairs.append((f"{kind} {args[:2]}", theirs, predictor.add_points(frame, obj, box=box).logits))
        elif kind == "mask":
            frame, obj, mask = args
            _, _, theirs = official.add_new_mask(state, frame, obj, torch.from_numpy(mask))
            pairs.append((f"{kind} {args[:2]}", theirs, predictor.add_mask(frame, obj, mask).logits))
        elif kind == "propagate":
            start, count, reverse = args
            theirs = list(official.propagate_in_video(state, start, count, reverse))
            mine = list(predictor.propagate(start, count, reverse))
            assert [t[0] for t in theirs] == [r.frame_idx for r in mine]
            assert all(t[1] == r.obj_ids for t, r in zip(theirs, mine))
            pairs += [(f"frame {r.frame_idx} reverse={reverse}", t[2], r.logits) for t, r in zip(theirs, mine)]
    use_packed_kernels(ours, False)
    return pairs


def check(pairs, exact: bool):
    for label, theirs, mine in pairs:
        if exact:
            assert max_diff(theirs, mine) == 0.0, label
        else:
            assert max_diff(theirs, mine) <= 1e-3, label
    # The objects must actually be visible on most frames for the comparison to mean anything.
    visible = sum(bool((m > 0).any()) for _, _, m in pairs)
    assert visible >= len(pairs) // 2


def click(frame: int, obj: int, points: list, labels: list) -> tuple:
    """A clicks action: ``points [[x, y], ...]`` in video pixels with ``labels`` 1/0."""
    return "points", frame, obj, np.array(points, np.float32), np.array(labels, np.int32)


def disc_mask(folder) -> np.ndarray:
    """A disc covering part of the left of the video's frames."""
    h, w = open_video(folder).size
    yy, xx = np.mgrid[:h, :w]
    return (xx - 0.2 * w) ** 2 + (yy - 0.4 * h) ** 2 <= (h / 6) ** 2
