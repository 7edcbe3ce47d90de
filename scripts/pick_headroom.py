"""How much a better IoU head could give on tracked frames: on every tracked frame of DAVIS 2016 dev (first-frame
masks, the offline predictor as ``vos eval`` runs it), the IoU with the truth of the candidate the IoU head picks,
of the best of the three candidates, how often the pick is the best, and the head's mean error on the three IoUs.

Candidates are read where the model decodes them (``decode``, three masks on every tracked frame for SAM 2's
configs and vos_small), brought to the annotation's size as the trackers bring masks (bilinear, threshold 0)
and scored against the annotation. The pick feeds the memory, so two models' tracks differ after their first
different pick: the numbers compare heads on the frames each one's own track sees.

Usage: ``python scripts/pick_headroom.py [CHECKPOINT ...] [--data ../shared/data] [--threads 1]``
(default: the embedded model).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

import vos
from evaluation.interactive import iou
from evaluation.masks import read_index_png
from vos.jobs.dataset_masks import predict_davis


def frame_scores(model, root: Path, sequence: str) -> list[tuple[float, float, bool, float]]:
    """(picked IoU, best IoU, picked is best, mean |predicted - true IoU|) for each tracked frame of ``sequence``."""
    decoded = []
    decode = model.decode

    def recording(*args, **kwargs):
        out = decode(*args, **kwargs)
        if out.masks.shape[1] == 3:
            decoded.append((out.masks[0].float().numpy(), out.iou[0].float().numpy()))
        return out

    model.decode = recording
    try:
        with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
            predict_davis(model, root, Path(tmp), [sequence], progress=False)
    finally:
        del model.decode
    truths = sorted((root / "Annotations" / "480p" / sequence).glob("*.png"))[1:]
    if len(decoded) != len(truths):
        raise RuntimeError(f"{sequence}: {len(decoded)} three-candidate decodes for {len(truths)} tracked frames")
    scores = []
    for (masks, predicted), path in zip(decoded, truths):
        truth = read_index_png(path) > 0
        h, w = truth.shape
        ious = [iou(cv2.resize(logits, (w, h), interpolation=cv2.INTER_LINEAR) > 0, truth) for logits in masks]
        pick = int(predicted.argmax())
        scores.append((ious[pick], max(ious), ious[pick] == max(ious), float(np.abs(predicted - ious).mean())))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", help="models to measure (default: the embedded one)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.data / "davis2016-dev"
    sequences = sorted(p.name for p in (root / "Annotations" / "480p").iterdir() if p.is_dir())
    print("| model | tracked frames | picked IoU | best of 3 IoU | pick is the best | IoU head's mean error |")
    print("|---|---|---|---|---|---|")
    for checkpoint in args.checkpoints or [None]:
        model = (vos.load_model(checkpoint) if checkpoint else vos.load_model()).eval()
        rows = np.array([s for name in sequences for s in frame_scores(model, root, name)], dtype=np.float64)
        print(f"| {checkpoint or 'embedded'} | {len(rows)} | {rows[:, 0].mean():.3f} | {rows[:, 1].mean():.3f} | "
              f"{100 * rows[:, 2].mean():.0f}% | {rows[:, 3].mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
