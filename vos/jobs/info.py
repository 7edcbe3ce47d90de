"""``vos info``: what a checkpoint holds: the config it loads as, its size, its parameters and how it was trained."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ModelInfo:
    """A loaded checkpoint's config ``name`` and ``family``, input size, trunk, parameter count, the automatic
    mask generator's filters it defaults to, and the training runs it records (oldest first; empty for weights
    that record none)."""

    name: str
    family: str
    image_size: int
    trunk: str
    parameters: int
    generator: str
    training: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"config:      {self.name} ({self.family})", f"image size:  {self.image_size}",
               f"trunk:       {self.trunk}", f"parameters:  {self.parameters:,}", f"generator:   {self.generator}"]
        for i, run in enumerate(self.training, 1):
            what = run.get("command") or run.get("from") or run.get("description", "")
            steps = f"{run['steps_done']} steps: " if "steps_done" in run else ""
            out.append(f"training {i}:  {steps}{what}")
        return out


def describe_model(checkpoint: str | os.PathLike | None = None, *, config: str | None = None,
                   image_size: int | None = None) -> ModelInfo:
    """Load ``checkpoint`` (a file, an official name, or ``None``: the embedded model) as ``vos track`` would
    and describe it."""
    from ..weights.checkpoint import training_history
    from ..weights.load import DEFAULT_WEIGHTS, load_model

    model = load_model(checkpoint, config=config, image_size=image_size)
    cfg = model.config
    path = Path(checkpoint) if checkpoint else DEFAULT_WEIGHTS
    g = cfg.generator
    generator = (f"keeps masks with predicted IoU > {g.pred_iou_thresh:g} and stability >= "
                 f"{g.stability_score_thresh:g} (offset {g.stability_score_offset:g}) by default")
    return ModelInfo(cfg.name, cfg.family, cfg.image_size, cfg.trunk.summary,
                     sum(p.numel() for p in model.parameters()), generator,
                     training_history(path) if path.is_file() else [])
