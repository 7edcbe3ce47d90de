"""``vos segment``: every object in still images (the automatic mask generator), written per image as binary
mask PNGs, SAM's records with COCO RLE segmentations, and an overlay."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from streams.files import atomic_write
from streams.masks import write_binary_png
from streams.overlay import Annotator

if TYPE_CHECKING:
    from ..image.mask_generator import FilterCounts

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def cli_option(name: str) -> str:
    """A generator setting as the commands spell it: ``pred_iou_thresh`` -> ``--pred-iou-thresh``."""
    return "--" + name.replace("_", "-")


@dataclass
class SegmentedImage:
    """One image done: ``masks`` masks written into ``folder``; ``counts``: what became of its candidates."""

    image: Path
    folder: Path
    masks: int
    counts: FilterCounts


def image_files(source: str | os.PathLike) -> list[Path]:
    """An image file, or the images of a folder in name order; ``FileNotFoundError`` naming the path when
    there are none."""
    source = Path(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"{source} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return files
    if source.is_file():
        return [source]
    raise FileNotFoundError(f"{source}: no such image or folder")


def segment_images(
    source: str | os.PathLike,
    out: str | os.PathLike = "vos-segment",
    *,
    checkpoint: str | os.PathLike | None = None,
    image_size: int | None = None,
    device: str | None = None,
    png: bool = True,
    log: Callable[[str], Any] | None = None,
    **generator_options: Any,
) -> list[SegmentedImage]:
    """Segment everything in ``source`` (an image or a folder of images) with ``checkpoint`` (default: the
    embedded model) and write ``out/<image name>/``: ``masks/NNN.png`` (one binary PNG per mask, best
    first; not with ``png=False``), ``masks.json`` and ``overlay.png``, each atomically, one image after
    another: an image that cannot be read stops the run with a ``ValueError`` naming it, and the images
    before it stay written. ``generator_options`` go to :class:`~vos.image.mask_generator.MaskGenerator`
    (``points_per_side``, ``pred_iou_thresh``, ...; left out or ``None``: the model's); ``log`` gets a line per
    image written, which for an image without masks says which filters removed its candidates."""
    from ..image.mask_generator import MaskGenerator, compress_rle, mask_to_rle
    from ..tracking.results import detections_from_masks
    from ..weights.load import load_model

    files = image_files(source)  # before the model is loaded: a wrong path fails at once
    model = load_model(checkpoint, image_size=image_size, device=device or "cpu")
    generator = MaskGenerator(model, progress=True, **generator_options)
    annotator = Annotator()
    done = []
    for path in files:
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the image: {exc}") from exc
        generated = generator.run(rgb)
        records = generated.masks
        folder = Path(out) / path.stem
        (folder / "masks").mkdir(parents=True, exist_ok=True)
        masks = np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, *rgb.shape[:2]), bool)
        overlay = annotator(rgb, detections_from_masks(list(range(1, len(records) + 1)), masks))
        atomic_write(folder / "overlay.png", lambda tmp: Image.fromarray(overlay).save(tmp, format="PNG"))
        for i, record in enumerate(records):
            if png:
                write_binary_png(folder / "masks" / f"{i:03d}.png", record["segmentation"])
            record["segmentation"] = compress_rle(mask_to_rle(record["segmentation"]))
        atomic_write(folder / "masks.json", lambda tmp: tmp.write_text(json.dumps(records)))
        done.append(SegmentedImage(path, folder, len(records), generated.counts))
        if log:
            log(f"{path.name}: " + (f"{len(records)} masks -> {folder}" if records else generated.counts.line(cli_option)))
    return done
