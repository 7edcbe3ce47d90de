"""``vos export``: a checkpoint's model as ONNX graphs and a manifest (:mod:`vos.export.exporter`)."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def export_onnx(
    checkpoint: str | os.PathLike | None,
    folder: str | os.PathLike,
    *,
    config: str | None = None,
    image_size: int | None = None,
    opset: int | None = None,
    overwrite: bool = False,
    log: Callable[[str], Any] | None = None,
) -> Path:
    """Load ``checkpoint`` (default: the embedded model) and export it into ``folder``; returns the manifest's
    path. ``opset`` defaults to :data:`vos.export.format.OPSET`; ``log`` gets a line before the export and one
    per graph."""
    from ..export.exporter import export_model
    from ..export.format import OPSET
    from ..weights.load import load_model

    model = load_model(checkpoint, config=config, image_size=image_size)
    opset = opset or OPSET
    if log:
        log(f"exporting {model.config.name} at {model.config.image_size} px to ONNX (opset {opset}) ...")
    return export_model(model, folder, opset=opset, overwrite=overwrite,
                        source=str(checkpoint) if checkpoint else "the embedded vos model", log=log)
