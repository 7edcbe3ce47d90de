"""Initialise our Hiera trunk from hiera-transformer's MAE-pretrained ``Hiera`` weights.

Block weights map one to one (hiera-transformer's timm MLP ``fc1/fc2`` become ``mlp.layers.0/1``); its
absolute position embedding over the pretraining token grid becomes the trunk's background embedding,
and the window embedding starts at zero, so at the pretraining resolution the two trunks agree exactly.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from ..errors import UnknownNameError
from ..model.hiera import HieraConfig

_MLP_NAMES = {"mlp.fc1.": "mlp.layers.0.", "mlp.fc2.": "mlp.layers.1."}


def convert_hiera_state_dict(hiera_state_dict: dict[str, torch.Tensor], config: HieraConfig) -> dict[str, torch.Tensor]:
    """A state dict for :class:`vos.model.hiera.Hiera` (unprefixed keys) from a hiera-transformer one.

    The classification head and final norm are dropped. The position embedding is resized (bicubic) to
    ``config.window_pos_embed_bkg_spatial_size`` when that differs from the pretraining grid.
    """
    if "pos_embed" not in hiera_state_dict:
        raise UnknownNameError("not an image Hiera state dict: no 'pos_embed' (video models with separate "
                               "spatial/temporal embeddings are not supported)")
    out: dict[str, torch.Tensor] = {}
    for key, value in hiera_state_dict.items():
        if key.startswith(("head.", "norm.")) or key == "pos_embed":
            continue
        for old, new in _MLP_NAMES.items():
            key = key.replace(old, new)
        out[key] = value
    pos = hiera_state_dict["pos_embed"]  # (1, N, C) over the pretraining token grid
    side = math.isqrt(pos.shape[1])
    if side * side != pos.shape[1]:
        raise ValueError(f"pos_embed has {pos.shape[1]} tokens, not a square grid")
    pos = pos.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    target = tuple(config.window_pos_embed_bkg_spatial_size)
    if (side, side) != target:
        pos = F.interpolate(pos, size=target, mode="bicubic")
    out["pos_embed"] = pos.contiguous()
    win = config.window_spec[0]
    out["pos_embed_window"] = torch.zeros(1, pos.shape[1], win, win, dtype=pos.dtype)
    return out


def read_mae_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The ``Hiera`` state dict of a MAE checkpoint file, read with ``weights_only=True``: hiera-transformer's
    own files keep it under ``model_state``, others under ``model`` or bare."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a Hiera checkpoint (a {type(data).__name__}, not a dict of weights)")
    for key in ("model_state", "model"):
        if key in data:
            return data[key]
    return data


def load_mae_trunk(trunk: torch.nn.Module, path: str | os.PathLike, config: HieraConfig) -> None:
    """Initialise ``trunk`` (a :class:`vos.model.hiera.Hiera` of ``config``) from the MAE checkpoint at ``path``."""
    trunk.load_state_dict(convert_hiera_state_dict(read_mae_state_dict(path), config))
