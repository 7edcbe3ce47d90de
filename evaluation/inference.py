"""Running the model over a DAVIS-layout dataset as the official ``tools/vos_inference.py`` does.

Every object of a sequence is prompted with its mask on the first frame, one forward propagation tracks
them all, and the thresholded logits are written as palette PNGs (the input's palette), one per frame.
A sequence whose masks are all on disk is not recomputed, so an interrupted run resumes where it stopped.
Under ``torchrun`` the sequences are shared out over the processes (see :mod:`evaluation.distributed`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from streams import FrameFolder
from streams.masks import write_palette_png

from .masks import frame_pngs, read_index_png


def label_map(masks: dict[int, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Object masks -> an id map; where masks overlap the lowest id wins, as the official writer paints."""
    out = np.zeros(shape, np.uint8)
    for obj_id in sorted(masks, reverse=True):
        out[masks[obj_id]] = obj_id
    return out


def sequence_done(frames_dir: Path, out_dir: Path) -> bool:
    """Whether every frame of the sequence already has its mask."""
    return out_dir.is_dir() and all((out_dir / f"{p.stem}.png").exists() for p in FrameFolder(frames_dir).files)


def predict_sequence(model, frames_dir: Path, first_mask: Path, out_dir: Path, settings=None, progress: bool = False) -> None:
    """Track the objects of ``first_mask`` through ``frames_dir``; write ``out_dir/<frame>.png``."""
    from vos.inference_core import TrackerSettings
    from vos.video_predictor import VideoPredictor

    video = FrameFolder(frames_dir)
    labels = read_index_png(first_mask)
    if labels.shape != tuple(video.size):
        raise ValueError(f"{first_mask}: mask is {labels.shape[1]}x{labels.shape[0]}, frames are {video.size[1]}x{video.size[0]}")
    with Image.open(first_mask) as image:
        palette = image.getpalette()
    obj_ids = [int(i) for i in np.unique(labels) if i not in (0, 255)]
    if not obj_ids:
        raise ValueError(f"{first_mask}: no objects in the first frame's mask")
    predictor = VideoPredictor(model, video, settings or TrackerSettings.vos_inference(keep_history=False))
    for obj_id in obj_ids:
        predictor.add_mask(0, obj_id, labels == obj_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    for result in tqdm(predictor.propagate(0), total=len(video), desc=frames_dir.name, disable=not progress, leave=False):
        masks = dict(zip(result.obj_ids, result.masks))
        stem = video.files[result.frame_idx].stem
        write_palette_png(out_dir / f"{stem}.png", label_map(masks, video.size), palette)


def predict_davis(
    model, root: Path, out_root: Path, sequences: list[str], settings=None, progress: bool = True
) -> list[str]:
    """Predict ``sequences`` of a DAVIS root (``JPEGImages/480p``, ``Annotations/480p``) into
    ``out_root/<sequence>/``, skipping finished ones. Returns the sequences computed."""
    images, annotations = _davis_dirs(Path(root))
    done = []
    for name in tqdm(sequences, desc="sequences", disable=not progress):
        out_dir = Path(out_root) / name
        if sequence_done(images / name, out_dir):
            continue
        first = frame_pngs(annotations / name)[0]
        predict_sequence(model, images / name, first, out_dir, settings, progress)
        done.append(name)
    return done


def _davis_dirs(root: Path) -> tuple[Path, Path]:
    for res in ("480p", "Full-Resolution", ""):
        images, annotations = root / "JPEGImages" / res, root / "Annotations" / res
        if images.is_dir() and annotations.is_dir():
            return images, annotations
    raise FileNotFoundError(f"{root}: not a DAVIS root (no JPEGImages/480p and Annotations/480p)")
