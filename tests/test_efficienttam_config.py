"""EfficientTAM without its oracle: official-format files load with their config inferred from the keys (and,
between variants with the same keys, from the file name), vos info names them, configs survive vos's format."""
from __future__ import annotations

import pytest
import torch
from oracle_free import random_state_dict

import vos
from vos.cli import main
from vos.model.config import EFFICIENT_CONFIGS, ModelConfig, get_config

EFFICIENTTAM = sorted(name for name in EFFICIENT_CONFIGS if name.startswith("efficienttam"))


def test_every_released_variant_has_a_config():
    assert EFFICIENTTAM == sorted(f"efficienttam_{size}{suffix}" for size in ("ti", "s")
                                  for suffix in ("", "_512x512", "_1", "_2"))


def _official_file(tmp_path, name: str):
    with torch.device("meta"):
        shapes = vos.build_model(get_config(name)).state_dict()
    state = random_state_dict({k: torch.empty(v.shape, dtype=v.dtype) for k, v in shapes.items()}, seed=0)
    path = tmp_path / f"{name}.pt"
    torch.save({"model": state}, path)
    return path, state


@pytest.mark.parametrize("name", ["efficienttam_ti_512x512", "efficienttam_s_2"])
def test_official_file_loads_and_is_described(tmp_path, capsys, name):
    path, state = _official_file(tmp_path, name)
    model = vos.load_model(path, image_size=256)
    assert model.config == get_config(name).replace(image_size=256)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    with torch.no_grad():
        features = model.encode_image(torch.randn(1, 3, 256, 256))
    assert [tuple(x.shape) for x in features.backbone_fpn] == [(1, 256, 16, 16)]
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    size = 512 if name.endswith("512x512") else 1024  # info shows the file's own input size
    assert f"{name} (EfficientTAM)" in out and f"image size:  {size}" in out and "ViT embed_dim=" in out


def test_a_renamed_file_gets_the_base_config(tmp_path):
    path, _ = _official_file(tmp_path, "efficienttam_ti_1")
    renamed = path.rename(tmp_path / "my_tracker.pt")
    assert vos.load_model(renamed).config == get_config("efficienttam_ti")
    assert vos.load_model(renamed, config="efficienttam_ti_1").config == get_config("efficienttam_ti_1")


@pytest.mark.parametrize("name", EFFICIENTTAM)
def test_config_round_trips_through_a_dict(name):
    config = get_config(name)
    assert ModelConfig.from_dict(config.to_dict()) == config
