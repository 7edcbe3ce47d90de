"""Loading a model: from a checkpoint file in any of the formats vos reads, an official name (downloaded once),
or the embedded default model shipped in this folder."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..model.config import ModelConfig, get_config
from ..model.device import check_device
from ..model.sam2 import SAM2Model
from .checkpoint import CheckpointError, build_model, infer_config, read_checkpoint
from .hub import canonical_name, checkpoint_path

# vos's own small model (config ``vos_small``), trained with ``vos train`` and shipped in the package.
DEFAULT_WEIGHTS = Path(__file__).parent / "vos_small.pt"


def load_model(
    path_or_name: str | os.PathLike | None = None,
    *,
    config: ModelConfig | str | None = None,
    image_size: int | None = None,
    device: str | torch.device | None = "cpu",
    progress: bool = True,
    compile: bool = False,
) -> SAM2Model:
    """Load a model from a checkpoint file or an official checkpoint name.

    Args:
        path_or_name: a file (official ``{"model": ...}``, vos's own format, or a bare state dict), an
            official name such as ``"sam2.1_hiera_tiny"`` (downloaded once into the cache), or ``None`` for
            the embedded default model.
        config: the config to load into; by default the file's own (vos format) or the official config
            whose keys and shapes the weights match (among configs with the same keys, such as EfficientTAM's
            variants, the one the file is named after).
        image_size: run the model at another square input size (a multiple of 32).
        device: where to put the model (``None``: the first CUDA GPU when there is one, else the CPU).
        compile: ``torch.compile`` its per-frame modules (:func:`vos.model.compiled.compile_model`): faster
            frames once compiled, at the cost of compiling on the first frames.
    Returns:
        the model in eval mode.
    """
    device = check_device(device)
    if path_or_name is None:
        if not DEFAULT_WEIGHTS.exists():
            raise FileNotFoundError(f"the embedded model is missing from this installation: {DEFAULT_WEIGHTS}")
        path_or_name = DEFAULT_WEIGHTS
    path = Path(path_or_name)
    if not path.exists() and canonical_name(str(path_or_name)) is not None:
        path = checkpoint_path(str(path_or_name), progress=progress)
    state_dict, stored = read_checkpoint(path)
    if isinstance(config, str):
        config = get_config(config)
    try:
        if config is None:
            config = stored if stored is not None else infer_config(state_dict, file_name=path.stem)
        if image_size is not None:
            config = config.replace(image_size=image_size)
        model = build_model(config, state_dict)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    model = model.to(device)
    if compile:
        from ..model.compiled import compile_model

        compile_model(model)
    return model
