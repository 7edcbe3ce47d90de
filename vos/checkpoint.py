"""Reading and writing model checkpoints: official SAM 2 files and vos's own format.

Official files hold ``{"model": state_dict}``; ours hold the config next to the weights. The config of an
official file is inferred by matching its keys and shapes against the known configs, and nothing is
loaded unless every key fits.
"""
from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from .config import OFFICIAL_CONFIGS, ModelConfig
from .model import SAM2Model

FORMAT = "vos"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model it is loaded into."""


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


def infer_config(state_dict: dict[str, torch.Tensor], image_size: int = 1024) -> ModelConfig:
    """The official config whose keys and shapes equal ``state_dict``'s.

    Raises :class:`CheckpointError` naming the closest config and the first differing keys otherwise.
    """
    found = _shapes(state_dict)
    scored = []
    for name, config in OFFICIAL_CONFIGS.items():
        expected = _expected_shapes(config)
        missing, unexpected, wrong = _mismatch(expected, found)
        if not (missing or unexpected or wrong):
            return config.replace(image_size=image_size) if image_size != config.image_size else config
        scored.append((len(missing) + len(unexpected) + len(wrong), name, expected, missing, unexpected, wrong))
    _, name, expected, missing, unexpected, wrong = min(scored, key=lambda s: s[0])
    raise CheckpointError(
        "the state dict fits no known config (closest: "
        + _describe(name, expected, found, missing, unexpected, wrong)
        + "); pass config= for a custom model"
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
        size = path.stat().st_size
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({size} bytes; truncated, corrupt, or not a "
            f"checkpoint; loaded with weights_only=True): {type(exc).__name__}: {exc}"
        ) from exc
    return _unpack(data, path)


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def build_model(config: ModelConfig, state_dict: dict[str, torch.Tensor] | None = None) -> SAM2Model:
    """A model in eval mode; with ``state_dict``, loaded strictly after checking every key and shape."""
    model = SAM2Model(config)
    if state_dict is not None:
        check_fits(config, state_dict)
        model.load_state_dict(state_dict, strict=True)
    return model.eval()
