"""Reading and writing model checkpoints: official SAM 2, EdgeTAM and EfficientTAM files and vos's own format.

Official files hold ``{"model": state_dict}``; ours hold the config next to the weights. The config of an
official file is inferred by matching its keys and shapes against the known configs, and nothing is
loaded unless every key fits.
"""
from __future__ import annotations

import os
import pickle
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from streams.files import atomic_write

from ..errors import CheckpointError
from ..model.config import EFFICIENT_CONFIGS, OFFICIAL_CONFIGS, VOS_CONFIGS, ModelConfig
from ..model.sam2 import SAM2Model

FORMAT = "vos"
FORMAT_VERSION = 1


@lru_cache(maxsize=None)
def _expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = SAM2Model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _shapes(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def _mismatch(expected: dict[str, tuple], found: dict[str, tuple]) -> tuple[list[str], list[str], list[str]]:
    """Missing keys, unexpected keys and keys whose shapes differ, each in the state dicts' order."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong = [k for k in expected if k in found and expected[k] != found[k]]
    return missing, unexpected, wrong


def _describe(config_name: str, expected: dict, found: dict, missing: list, unexpected: list, wrong: list) -> str:
    parts = [f"{len(missing)} missing, {len(unexpected)} unexpected, {len(wrong)} of wrong shape against {config_name}"]
    if missing:
        parts.append(f"first missing key: {missing[0]!r}")
    if unexpected:
        parts.append(f"first unexpected key: {unexpected[0]!r}")
    if wrong:
        k = wrong[0]
        parts.append(f"first shape mismatch: {k!r} is {found[k]} in the checkpoint, {expected[k]} in the model")
    return "; ".join(parts)


def infer_config(
    state_dict: dict[str, torch.Tensor], image_size: int | None = None, file_name: str | None = None
) -> ModelConfig:
    """The known config (official SAM 2, EdgeTAM, EfficientTAM, or vos's own such as ``vos_small``) whose keys and
    shapes equal ``state_dict``'s, at its own input size unless ``image_size`` is given.

    Some configs share every key and shape (EfficientTAM's ``efficienttam_ti``, ``_ti_512x512``, ``_ti_1`` and
    ``_ti_2`` differ in input size and memory attention only): then the one named like ``file_name`` (the
    checkpoint's name without its suffix, as the official files are named) is chosen, else the first listed.

    Raises :class:`CheckpointError` naming the closest config and the first differing keys otherwise.
    """
    found = _shapes(state_dict)
    scored = []
    fitting: list[ModelConfig] = []
    for name, config in {**OFFICIAL_CONFIGS, **EFFICIENT_CONFIGS, **VOS_CONFIGS}.items():
        expected = _expected_shapes(config)
        missing, unexpected, wrong = _mismatch(expected, found)
        if not (missing or unexpected or wrong):
            fitting.append(config)
        scored.append((len(missing) + len(unexpected) + len(wrong), name, expected, missing, unexpected, wrong))
    if fitting:
        config = next((c for c in fitting if c.name == file_name), fitting[0])
        return config.replace(image_size=image_size) if image_size not in (None, config.image_size) else config
    _, name, expected, missing, unexpected, wrong = min(scored, key=lambda s: s[0])
    raise CheckpointError(
        "the state dict fits no known config (closest: "
        + _describe(name, expected, found, missing, unexpected, wrong)
        + "); pass config= (--config on the command line) for a custom model"
    )


def check_fits(config: ModelConfig, state_dict: dict[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointError` unless ``state_dict`` has exactly the keys and shapes of ``config``."""
    expected, found = _expected_shapes(config), _shapes(state_dict)
    missing, unexpected, wrong = _mismatch(expected, found)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"checkpoint does not match config {config.name!r}: "
            + _describe(config.name, expected, found, missing, unexpected, wrong)
        )


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], ModelConfig | None]:
    """Read a checkpoint file safely (``weights_only=True``): its state dict and stored config, if any."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a directory, not a file: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and pickle report bad files under many exception types
        raise CheckpointError(_load_failure(path, exc)) from None
    return _unpack(data, path)


def _load_failure(path: Path, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, in plain words. PyTorch's own message for a
    refused pickle advises loading with ``weights_only=False``, which would run whatever code the file holds:
    it is never repeated here."""
    size = path.stat().st_size
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        what = re.search(r"GLOBAL ([\w.]+)", text)
        detail = f"it refers to {what.group(1)}" if what else "it holds data other than tensors and plain values"
        return (f"{path} is not a plain weights file ({size} bytes): {detail}, which a safe load refuses. vos reads "
                "checkpoints with weights_only=True only and never runs code from a file; re-save the weights "
                "as a state dict (torch.save(model.state_dict(), path)) from a source you trust")
    if "zip archive" in text or "central directory" in text:
        return f"{path} is not a readable PyTorch checkpoint ({size} bytes): the archive is truncated or corrupt"
    return f"{path} is not a readable PyTorch checkpoint ({size} bytes; not a file written by torch.save)"


def _unpack(data: Any, path: Path) -> tuple[dict[str, torch.Tensor], ModelConfig | None]:
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} holds a {type(data).__name__}, not a checkpoint dict")
    config = None
    if data.get("format") == FORMAT:
        try:
            config = ModelConfig.from_dict(data["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path} has an invalid vos config: {exc}") from exc
    if "model" in data:
        state_dict = data["model"]
    elif data and all(isinstance(v, torch.Tensor) for v in data.values()):
        state_dict = data  # a bare state dict
    else:
        raise CheckpointError(f"{path} has no 'model' entry (top-level keys: {sorted(map(str, data))[:8]})")
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path}: 'model' is not a state dict of tensors")
    return state_dict, config


def training_history(path: str | os.PathLike) -> list[dict[str, Any]]:
    """How the weights in ``path`` were trained, oldest run first (see :class:`vos.train.trainer.Trainer`):
    each run's command or description, settings and steps; empty for weights that do not record it."""
    try:
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(_load_failure(Path(path), exc)) from None
    history = data.get("training", []) if isinstance(data, dict) else []
    return history if isinstance(history, list) else []


def save_model(
    model: SAM2Model, path: str | os.PathLike, dtype: torch.dtype | None = None, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` in vos's format (config + weights), atomically: a crash leaves no partial file.
    ``dtype`` (e.g. ``torch.float16``) stores floating-point weights at that precision, half the size;
    they are loaded back into a float32 model. ``extra`` entries (a trainer's optimiser state and step)
    are stored beside them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if dtype is not None:
        weights = {k: v.to(dtype) if v.is_floating_point() else v for k, v in weights.items()}
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "model": weights,
        **(extra or {}),
    }
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def build_model(config: ModelConfig, state_dict: dict[str, torch.Tensor] | None = None) -> SAM2Model:
    """A model in eval mode; with ``state_dict``, loaded strictly after checking every key and shape."""
    model = SAM2Model(config)
    if state_dict is not None:
        check_fits(config, state_dict)
        check_finite(state_dict)
        model.load_state_dict(state_dict, strict=True)
    return model.eval()


def check_finite(state_dict: dict[str, torch.Tensor]) -> None:
    """Raise :class:`CheckpointError` naming the first weight that holds NaN or infinity: such a model
    runs, and silently predicts nothing."""
    for key, value in state_dict.items():
        if value.is_floating_point() and value.device.type != "meta" and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"weight {key!r} holds {bad} NaN or infinite value(s) of {value.numel()}: "
                                  "the checkpoint is damaged (or was saved from a diverged training run)")
