"""``vos train``: a model to start from, clips to train on and a :class:`~vos.train.trainer.Trainer`, resumed
from the run folder's last checkpoint when there is one."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clips import ClipSettings
from .prior import PriorSimulation
from .rollout import PromptSimulation
from .trainer import TrainSettings

PathLike = str | os.PathLike


@dataclass
class TrainData:
    """What to train and validate on: a DAVIS-layout root (``split``: an ImageSets file; without a root,
    synthetic videos only), interactive image sets for copy-paste composites (``exclude_images``: a file of
    their names to hold out) and a DAVIS-layout root to compute J&F on at checkpoints."""

    davis: PathLike | None = None
    split: PathLike | None = None
    images: list[PathLike] = field(default_factory=list)
    exclude_images: PathLike | None = None
    val_root: PathLike | None = None
    val_split: PathLike | None = None


@dataclass
class TrainRun:
    """The run's weights (``out/model.pt``) and its last validation scores (empty when none ran)."""

    model: Path
    scores: dict[str, float]


def train(
    out: PathLike,
    *,
    settings: TrainSettings = TrainSettings(),
    clips: ClipSettings = ClipSettings(),
    prompts: PromptSimulation = PromptSimulation(),
    prior: PriorSimulation = PriorSimulation(),
    data: TrainData = TrainData(),
    init: PathLike | None = None,
    config: str = "vos_small",
    image_size: int | None = None,
    init_trunk: PathLike | None = None,
    previous_mask: bool | None = None,
    device: str | None = None,
    threads: int | None = None,
    command: str | None = None,
    log: Callable[[str], Any] | None = None,
) -> TrainRun:
    """Train into the run folder ``out`` (checkpoints, ``log.jsonl``, validation masks), from ``init`` (a
    checkpoint or official name to fine-tune) or ``config`` from scratch (its trunk from the MAE weights
    ``init_trunk`` when given); see :func:`~vos.train.setup.starting_model`, which ``previous_mask`` passes
    on to. ``prior``: how the previous mask is drawn in training, for a model that tracks with it. ``device`` defaults to CUDA when
    available; ``threads`` sets torch's CPU threads. ``command`` is recorded in the weights' lineage. A run
    folder holding ``last.pt`` is resumed (``log`` says so)."""
    import torch

    from ..model.device import check_device
    from .setup import clip_sampler, starting_model, validation_set
    from .trainer import Trainer

    if threads:
        torch.set_num_threads(threads)
    device = check_device(device)
    model, lineage = starting_model(init, config, image_size, init_trunk, settings.seed, previous_mask)
    model = model.to(device)
    sampler = clip_sampler(model.image_size, clips, data.davis, data.split, data.images, data.exclude_images)
    validation = validation_set(data.val_root, data.val_split) if data.val_root else None
    trainer = Trainer(model, sampler, out, settings, prompts, prior, validation=validation, lineage=lineage,
                      run={"command": command} if command else None)
    if trainer.resume() and log:
        log(f"resumed from {Path(out) / 'last.pt'} at step {trainer.step}")
    scores = trainer.run()
    return TrainRun(Path(out) / "model.pt", scores)
