"""``vos demo``: the main job end to end with no download and no data: a seeded synthetic video, one click
on an object in its first frame, tracking with the embedded model, an overlay video and masks, and J&F
against the generator's exact masks."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evaluation.interactive import deepest_point
from streams.files import atomic_write
from streams.masks import write_palette_png

from ..model.sam2 import SAM2Model
from ..tracking.prompts import FramePrompt, Prompt
from ..train.synthetic import generate_video
from .track import track_video


@dataclass
class DemoResult:
    click: tuple[float, float]
    overlay: Path
    masks: Path
    j_and_f: float
    j: float
    f: float


def _write_jpeg(path: Path, frame: np.ndarray) -> Path:
    """``frame (H, W, 3)`` RGB as a quality-95 JPEG, atomically (OpenCV's encoder, as the demo's numbers were
    measured with)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the frame as JPEG")
    return atomic_write(path, lambda tmp: tmp.write_bytes(data.tobytes()))


def run_demo(model: SAM2Model, out_dir: str | Path, seed: int = 0, num_frames: int = 48, progress: bool = True) -> DemoResult:
    from evaluation.davis import evaluate_sequence

    out_dir = Path(out_dir)
    video = generate_video(seed, num_frames=num_frames, size=(240, 320), num_objects=2, num_distractors=1)
    frames_dir, gt_dir = out_dir / "frames", out_dir / "ground_truth"
    for folder in (frames_dir, gt_dir):  # the demo's own folders: a shorter re-run must not keep older frames
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    target = 1
    for i, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        _write_jpeg(frames_dir / f"{i:05d}.jpg", frame)
        write_palette_png(gt_dir / f"{i:05d}.png", (mask == target).astype(np.uint8))
    click = deepest_point(video.masks[0] == target)  # where a person would click
    prompts = [FramePrompt(0, target, Prompt.make(points=[click], labels=[1]))]
    outputs = track_video(model, frames_dir, prompts, out_dir, masks="davis", progress=progress, overwrite=True)
    (scores,) = evaluate_sequence(gt_dir, outputs.masks)
    s = scores.summary()
    return DemoResult(click, outputs.overlay, outputs.masks, s["J&F-Mean"], s["J-Mean"], s["F-Mean"])


def demo(out_dir: str | Path = "vos-demo", *, checkpoint: str | Path | None = None, seed: int = 0,
         num_frames: int = 48) -> DemoResult:
    """``vos demo``: :func:`run_demo` with the model of ``checkpoint`` (default: the embedded one)."""
    from ..weights.load import load_model

    return run_demo(load_model(checkpoint), out_dir, seed=seed, num_frames=num_frames)
