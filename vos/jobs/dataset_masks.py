"""The model half of `vos eval`: running a model over a dataset as the official ``tools/vos_inference.py`` does.

DAVIS-layout datasets: every object of a sequence is prompted with its mask on the first frame, one forward
propagation tracks them all, and each frame is written as a palette PNG (the input's palette) by the one
ownership rule of :func:`vos.tracking.results.owner_map`. SA-V-layout datasets: one binary PNG per object and
frame, objects free to overlap. A sequence whose masks are all on disk is not recomputed, so an
interrupted run resumes where it stopped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from evaluation.layout import dataset_dirs
from evaluation.masks import frame_pngs, read_index_png
from streams import FrameFolder

from ..model.interface import TrackingModel
from ..tracking.core import TrackerSettings
from ..tracking.video_predictor import VideoPredictor
from .sinks import PaletteMaskSink, PerObjectMaskSink, Sink


def davis_settings(precision: str = "float32") -> TrackerSettings:
    """The tracker settings of ``vos eval`` on DAVIS-layout datasets, decided here once: the official
    ``tools/vos_inference.py`` defaults (objects do not overlap), with bounded memory."""
    return TrackerSettings.vos_inference(keep_history=False, precision=precision)


def sav_settings(precision: str = "float32") -> TrackerSettings:
    """The tracker settings of ``vos eval`` on SA-V-layout datasets, decided here once: the official
    ``tools/vos_inference.py --per_obj_png_file`` defaults (objects may overlap), with bounded memory."""
    return TrackerSettings(keep_history=False, precision=precision)


def sequence_done(frames_dir: Path, out_dir: Path) -> bool:
    """Whether every frame of the sequence already has its mask."""
    return out_dir.is_dir() and all((out_dir / f"{p.stem}.png").exists() for p in FrameFolder(frames_dir).files)


def first_appearances(annotation_files: list[Path]) -> dict[int, tuple[Path, np.ndarray]]:
    """Each object's first annotation: ``{obj_id: (png, mask (H, W) bool)}``, reading the files in order.
    With DAVIS-style annotations on frame 0 only, that is every object of frame 0; with YouTube-VOS-style
    ones, objects that enter later have their first mask on a later frame."""
    found: dict[int, tuple[Path, np.ndarray]] = {}
    for path in annotation_files:
        labels = read_index_png(path)
        for obj_id in (int(i) for i in np.unique(labels) if i not in (0, 255)):
            if obj_id not in found:
                found[obj_id] = (path, labels == obj_id)
    return found


def predict_sequence(
    model: TrackingModel,
    frames_dir: Path,
    annotations: list[Path],
    out_dir: Path,
    settings: TrackerSettings | None = None,
    progress: bool = False,
) -> None:
    """Track the objects of ``annotations`` through ``frames_dir``; write ``out_dir/<frame>.png``.

    With one annotation file (the first frame's), as ``tools/vos_inference.py`` by default. With several,
    each object starts from its first annotated frame and is empty before it, as with the official
    ``--track_object_appearing_later_in_video``.
    """
    video = FrameFolder(frames_dir)
    stems = [p.stem for p in video.files]
    index_of = {stem: i for i, stem in enumerate(stems)}
    objects = first_appearances(annotations)
    if not objects:
        raise ValueError(f"{annotations[0]}: no objects in the annotation")
    with Image.open(annotations[0]) as image:
        palette = image.getpalette()
    predictor = VideoPredictor(model, video, settings or davis_settings())
    for obj_id, (path, mask) in sorted(objects.items()):
        if path.stem not in index_of:
            raise ValueError(f"{path}: no frame {path.stem} in {frames_dir}")
        if mask.shape != tuple(video.size):
            raise ValueError(f"{path}: mask is {mask.shape[1]}x{mask.shape[0]}, frames are {video.size[1]}x{video.size[0]}")
        predictor.add_mask(index_of[path.stem], obj_id, mask)
    start = min(index_of[path.stem] for path, _ in objects.values())
    tracked = predictor.track(start, from_first_prompt=True)
    _write(tqdm(tracked, total=len(video) - start, desc=frames_dir.name, disable=not progress, leave=False),
           PaletteMaskSink(out_dir, stems, palette))


def predict_davis(
    model: TrackingModel, root: Path, out_root: Path, sequences: list[str], settings: TrackerSettings | None = None,
    progress: bool = True, later_objects: bool = False,
) -> list[str]:
    """Predict ``sequences`` of a DAVIS root (``JPEGImages/480p``, ``Annotations/480p``) or a
    YouTube-VOS-style root (``JPEGImages``, ``Annotations``) into ``out_root/<sequence>/``, skipping
    finished ones. With ``later_objects``, objects first annotated after the first frame are tracked from
    there. Returns the sequences computed."""
    images, annotations = dataset_dirs(Path(root))
    done = []
    for name in tqdm(sequences, desc="sequences", disable=not progress):
        out_dir = Path(out_root) / name
        if sequence_done(images / name, out_dir):
            continue
        pngs = frame_pngs(annotations / name)
        predict_sequence(model, images / name, pngs if later_objects else pngs[:1], out_dir, settings, progress)
        done.append(name)
    return done


def predict_sav(
    model: TrackingModel, images: Path, annotations: Path, out_root: Path, videos: list[str],
    settings: TrackerSettings | None = None, progress: bool = True, later_objects: bool = False,
) -> list[str]:
    """Predict SA-V-layout videos (``annotations/<video>/<obj:03d>/<frame>.png``, frames in
    ``images/<video>/``) as ``tools/vos_inference.py --per_obj_png_file`` does: each object from its first
    mask, objects free to overlap, one binary PNG per object and frame in ``out_root/<video>/<obj>/``.
    With ``later_objects`` each object starts from its first non-empty mask. Finished videos are skipped."""
    done = []
    for name in tqdm(videos, desc="videos", disable=not progress):
        out_dir = Path(out_root) / name
        objects = sorted(p for p in (Path(annotations) / name).iterdir() if p.is_dir())
        if not objects:
            raise ValueError(f"{Path(annotations) / name}: no per-object folders (SA-V layout <video>/<obj>/<frame>.png)")
        folder = FrameFolder(Path(images) / name)
        stems = [p.stem for p in folder.files]
        if all((out_dir / obj.name / f"{stem}.png").exists() for obj in objects for stem in stems):
            continue
        index_of = {stem: i for i, stem in enumerate(stems)}
        predictor = VideoPredictor(model, folder, settings or sav_settings())
        for obj in objects:
            pngs = frame_pngs(obj)
            if later_objects:
                first = next(((p, m) for p in pngs if (m := read_index_png(p) > 0).any()), None)
            else:
                first = (pngs[0], read_index_png(pngs[0]) > 0) if pngs else None
            if first is None or not first[1].any():
                raise ValueError(f"{obj}: no mask to start from" + ("" if later_objects else " on its first annotated frame"))
            path, mask = first
            if path.stem not in index_of:
                raise ValueError(f"{path}: no frame {path.stem} in {Path(images) / name}")
            predictor.add_mask(index_of[path.stem], int(obj.name), mask)
        _write(predictor.track(from_first_prompt=True), PerObjectMaskSink(out_dir, stems))
        done.append(name)
    return done


def _write(tracked, sink: Sink) -> None:
    """Each frame the predictor tracks into ``sink``, with its result."""
    with sink:
        for frame, result in tracked:
            sink.write(frame, result)
