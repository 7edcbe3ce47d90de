"""What a training run starts from: the model (fresh, from a trunk's MAE weights, or from any checkpoint)
with the lineage it carries, and the clips it trains on, from data folders. ``vos train`` is these plus
:class:`~vos.train.trainer.Trainer`."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..model.config import get_config
from ..model.sam2 import SAM2Model
from ..weights.checkpoint import build_model, training_history
from .clips import ClipSampler, ClipSettings, DavisVideos
from .composite import CompositeSource

PathLike = str | os.PathLike


def starting_model(
    init: PathLike | None = None, config: str = "vos_small", image_size: int | None = None,
    init_trunk: PathLike | None = None, seed: int = 0, previous_mask: bool | None = None,
) -> tuple[SAM2Model, list[dict[str, Any]]]:
    """The model to train and the runs it already went through. ``init``: a checkpoint or an official name
    to fine-tune (its lineage goes on); otherwise ``config`` from scratch, seeded, with the trunk from MAE
    Hiera weights when ``init_trunk`` is given. ``previous_mask`` switches the config's
    ``track_with_previous_mask`` (``None``: as the weights or the config have it)."""
    if init is not None:
        from ..weights.load import load_model

        model = load_model(init, image_size=image_size)
        if previous_mask is not None and previous_mask != model.config.track_with_previous_mask:
            model = build_model(model.config.replace(track_with_previous_mask=previous_mask), model.state_dict())
        lineage = training_history(init) if Path(init).is_file() else []
        return model, lineage or [{"from": str(init)}]
    cfg = get_config(config)
    if image_size:
        cfg = cfg.replace(image_size=image_size)
    if previous_mask is not None:
        cfg = cfg.replace(track_with_previous_mask=previous_mask)
    torch.manual_seed(seed)
    model = build_model(cfg)
    if init_trunk is not None:
        from ..weights.mae import load_mae_trunk

        load_mae_trunk(model.image_encoder.trunk, init_trunk, cfg.trunk)
    return model, []


def clip_sampler(
    image_size: int, clips: ClipSettings, davis: PathLike | None = None, split: PathLike | None = None,
    images: list[PathLike] = (), exclude_images: PathLike | None = None,
) -> ClipSampler:
    """Clips from a DAVIS-layout root (``split``: an ImageSets file), copy-paste composites cut from
    interactive image sets ``images`` (those named in the ``exclude_images`` list left out) and DAVIS masks,
    and synthetic videos, in the proportions of ``clips``."""
    videos = DavisVideos(davis, split) if davis else None
    composites = None
    if clips.composite_prob > 0:
        if not images and videos is None:
            raise ValueError("composite clips need real masks to cut objects from: interactive image sets "
                             "(vos train --images) or a DAVIS root (--davis)")
        exclude = set()
        if exclude_images:
            exclude = {line.strip() for line in Path(exclude_images).read_text().splitlines() if line.strip()}
        composites = CompositeSource.from_data(images, videos, max_pasted=clips.max_objects, exclude=exclude)
    return ClipSampler(image_size, videos, clips, composites)


def validation_set(root: PathLike, split: PathLike | None = None) -> tuple[Path, list[str]]:
    """A DAVIS-layout root and the sequences to validate on: those of the ``split`` file, or all."""
    root = Path(root)
    if split:
        return root, [line.strip() for line in Path(split).read_text().splitlines() if line.strip()]
    return root, sorted(p.name for p in (root / "Annotations" / "480p").iterdir() if p.is_dir())
