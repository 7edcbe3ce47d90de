"""DAVIS semi-supervised evaluation, exactly as the official davis2017-evaluation computes it.

Ground truth: ``<gt_root>/<seq>/<frame>.png`` palette PNGs (0 background, 255 void, ids 1..N). The object
count is the largest id in the first frame; the first and last frames are not scored.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import statistics
from .masks import frame_pngs, read_index_png, read_prediction
from .metrics import (
    disk,
    frame_boundary_f,
    frame_region_similarity,
    support_box,
    tolerance_pixels,
)


@dataclass
class ObjectScores:
    """Per-frame J and F of one object over the scored frames."""

    sequence: str
    object_id: str
    J: np.ndarray
    F: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.sequence}_{self.object_id}"

    def summary(self) -> dict[str, float]:
        """The official per-object statistics, as fractions."""
        out = {
            "J-Mean": statistics.mean(self.J),
            "J-Recall": statistics.recall(self.J),
            "J-Decay": statistics.decay(self.J),
            "F-Mean": statistics.mean(self.F),
            "F-Recall": statistics.recall(self.F),
            "F-Decay": statistics.decay(self.F),
        }
        out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2
        return out


def evaluate_sequence(gt_dir: Path, pred_dir: Path, threads: int = 2, frames: slice = slice(None)) -> list[ObjectScores]:
    """Score one sequence, or the part ``frames`` of its scored frames (all but the first and last);
    raises naming the file for a missing prediction or a surplus object id.

    Frames are read and scored by ``threads`` threads (PNG decoding and OpenCV release the GIL)."""
    gt_dir, pred_dir = Path(gt_dir), Path(pred_dir)
    sequence = gt_dir.name
    gt_files = frame_pngs(gt_dir)
    if len(gt_files) < 3:
        raise ValueError(f"{gt_dir}: {len(gt_files)} annotated frames; at least 3 are needed (first and last are not scored)")
    first = read_index_png(gt_files[0])
    num_objects = int(np.where(first == 255, 0, first).max())
    shape = first.shape

    radius = tolerance_pixels(*shape)
    kernel = disk(radius)

    def score_frame(gt_file: Path) -> tuple[list[float], list[float]]:
        gt = read_index_png(gt_file)
        pred = _read_prediction(pred_dir / gt_file.name, shape)
        # Everything below happens inside the box around both masks, grown so that boundaries and
        # their dilations there equal those of the whole frame (see metrics.support_box); void pixels
        # only make the box larger.
        window = support_box(cv2.bitwise_or(gt, pred), radius)
        if window is None:
            return [1.0] * num_objects, [1.0] * num_objects
        # Void (255) counts as background in the semi-supervised task: no object id reaches 255, so the
        # comparisons with ids below treat it so without rewriting the mask.
        gt, pred = gt[window], pred[window]
        surplus = int(pred.max(initial=0))
        if surplus > num_objects:
            raise ValueError(
                f"{pred_dir}: prediction holds object id {surplus}, but the sequence has {num_objects} object(s) "
                f"(ids 1..{num_objects} from the first ground-truth frame)"
            )
        j, f = [], []
        for k in range(1, num_objects + 1):
            g, p = (gt == k).view(np.uint8), (pred == k).view(np.uint8)
            j.append(frame_region_similarity(g, p))
            f.append(frame_boundary_f(g, p, kernel))
        return j, f

    with ThreadPoolExecutor(max(threads, 1)) as pool:
        scores = list(pool.map(score_frame, gt_files[1:-1][frames]))
    J = np.array([j for j, _ in scores]).reshape(len(scores), num_objects)
    F = np.array([f for _, f in scores]).reshape(len(scores), num_objects)
    return [ObjectScores(sequence, str(k + 1), J[:, k], F[:, k]) for k in range(num_objects)]


def _read_prediction(path: Path, shape: tuple[int, int]) -> np.ndarray:
    mask = read_prediction(path)
    if mask.shape != tuple(shape):
        raise ValueError(f"{path}: prediction is {mask.shape[1]}x{mask.shape[0]}, ground truth is {shape[1]}x{shape[0]}")
    return mask


def read_sequence_list(path: Path) -> list[str]:
    """Sequence names from an ``ImageSets`` text file, one per line (DAVIS 2016 frame-pair lines accepted)."""
    names: list[str] = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        name = line.split()[0].strip("/").split("/")[2] if line.startswith("/") else line
        if name not in names:
            names.append(name)
    return names
