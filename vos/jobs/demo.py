"""``vos demo``: the main job end to end with no download and no data: one click on an object in the first
frame of a short real clip shipped in the package, tracking with the embedded model, an overlay video and
masks, and J&F against the clip's human annotation.

The clip is ``dog`` from DAVIS 2016 (Perazzi et al., CVPR 2016; CC BY-NC 4.0), 60 frames at 854x480, an
H.264 re-encoding of the published JPEG frames, with its published per-frame masks: a DAVIS 2016 validation
sequence, which vos's own model was never trained on. It was chosen as a typical target rather than a
flattering one: a dog running with the camera following it, and the dev sequence whose score under the
embedded model was closest to the model's mean over the eight dev sequences when it was picked. ``synthetic``
runs the seeded synthetic video instead (no annotation needed: the generator's masks are exact)."""
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


DEMO_CLIP = Path(__file__).resolve().parents[1] / "data" / "demo" / "dog.mp4"
DEMO_ANNOTATIONS = DEMO_CLIP.parent / "annotations"


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


def run_demo(
    model: SAM2Model, out_dir: str | Path, *, synthetic: bool = False, seed: int = 0, num_frames: int = 48,
    progress: bool = True,
) -> DemoResult:
    """Click on the clip's object (the deepest point of its first annotated mask, where a person would click),
    track it into ``out_dir`` (``overlay.mp4``, ``masks/``) and score it with J&F (DAVIS protocol)."""
    from evaluation.davis import evaluate_sequence
    from evaluation.masks import read_index_png

    out_dir = Path(out_dir)
    if synthetic:
        video, gt_dir = _synthetic_clip(out_dir, seed, num_frames)
    else:
        video, gt_dir = DEMO_CLIP, DEMO_ANNOTATIONS
    target = 1
    click = deepest_point(read_index_png(gt_dir / "00000.png") == target)
    prompts = [FramePrompt(0, target, Prompt.make(points=[click], labels=[1]))]
    outputs = track_video(model, video, prompts, out_dir, masks="davis", progress=progress, overwrite=True)
    (scores,) = evaluate_sequence(gt_dir, outputs.masks)
    s = scores.summary()
    return DemoResult(click, outputs.overlay, outputs.masks, s["J&F-Mean"], s["J-Mean"], s["F-Mean"])


def _synthetic_clip(out_dir: Path, seed: int, num_frames: int) -> tuple[Path, Path]:
    """A seeded synthetic video's frames and exact masks of object 1, written into ``out_dir``."""
    video = generate_video(seed, num_frames=num_frames, size=(240, 320), num_objects=2, num_distractors=1)
    frames_dir, gt_dir = out_dir / "frames", out_dir / "ground_truth"
    for folder in (frames_dir, gt_dir):  # the demo's own folders: a shorter re-run must not keep older frames
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for i, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        _write_jpeg(frames_dir / f"{i:05d}.jpg", frame)
        write_palette_png(gt_dir / f"{i:05d}.png", (mask == 1).astype(np.uint8))
    return frames_dir, gt_dir


def demo(out_dir: str | Path = "vos-demo", *, checkpoint: str | Path | None = None, synthetic: bool = False,
         seed: int = 0, num_frames: int = 48) -> DemoResult:
    """``vos demo``: :func:`run_demo` with the model of ``checkpoint`` (default: the embedded one)."""
    from ..weights.load import load_model

    return run_demo(load_model(checkpoint), out_dir, synthetic=synthetic, seed=seed, num_frames=num_frames)
