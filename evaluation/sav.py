"""SA-V evaluation, as the official SA-V evaluator computes it.

Layout: ``<root>/<video>/<object:03d>/<frame:05d>.png``, one binary PNG per object per annotated frame
(every 4th frame). Each object is scored on its own annotated frames minus its first and last, from the
first frame where it appears in the ground truth or the prediction. As the official evaluator, a video in
the DAVIS layout (``<video>/<frame>.png`` index maps) is accepted too: every object that appears in its
ground truth, even first on a later frame, is scored on the video's annotated frames minus the first and
last.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .davis import ObjectScores
from .masks import frame_pngs, read_index_png, read_prediction
from .metrics import boundary_f, region_similarity


def evaluate_video(gt_dir: Path, pred_dir: Path, threads: int = 2) -> list[ObjectScores]:
    """Score every object of one video, ``threads`` objects at a time."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    objects = sorted(p for p in gt_dir.iterdir() if p.is_dir())
    if not objects and frame_pngs(gt_dir):
        return _evaluate_label_maps(gt_dir, pred_dir)
    if not objects:
        raise ValueError(f"{gt_dir}: no per-object folders (expected the SA-V layout <video>/<object>/<frame>.png)")
    with ThreadPoolExecutor(max(threads, 1)) as pool:
        return list(pool.map(lambda obj: _evaluate_object(obj, pred_dir / obj.name, gt_dir.name), objects))


def _binary(mask: np.ndarray, path: Path) -> np.ndarray:
    if len(np.unique(mask)) > 2:
        raise ValueError(f"{path}: an SA-V mask must be binary, found values {np.unique(mask)[:6].tolist()}")
    return mask > 0


def _evaluate_object(gt_obj: Path, pred_obj: Path, video: str) -> ObjectScores:
    frames = frame_pngs(gt_obj)[1:-1]
    gt = np.stack([_binary(read_index_png(f), f) for f in frames])
    pred = np.stack([_binary(read_prediction(pred_obj / f.name), pred_obj / f.name) for f in frames])
    if not gt.any():
        raise ValueError(f"{gt_obj}: the object is absent from every scored frame, so it cannot be scored")
    present = np.flatnonzero(gt.any(axis=(1, 2)) | pred.any(axis=(1, 2)))
    start = int(present[0])
    gt, pred = gt[start:], pred[start:]
    return ObjectScores(video, gt_obj.name, region_similarity(gt, pred), boundary_f(gt, pred))


def _evaluate_label_maps(gt_dir: Path, pred_dir: Path) -> list[ObjectScores]:
    frames = frame_pngs(gt_dir)[1:-1]
    if not frames:
        raise ValueError(f"{gt_dir}: too few annotated frames to score (first and last are not scored)")
    gt = np.stack([read_index_png(f) for f in frames])
    pred = np.stack([read_prediction(pred_dir / f.name) for f in frames])
    out = []
    for obj_id in (int(i) for i in np.unique(gt) if i not in (0, 255)):
        g, p = gt == obj_id, pred == obj_id
        present = np.flatnonzero(g.any(axis=(1, 2)) | p.any(axis=(1, 2)))
        g, p = g[present[0]:], p[present[0]:]
        out.append(ObjectScores(gt_dir.name, f"{obj_id:03d}", region_similarity(g, p), boundary_f(g, p)))
    return out
