"""EdgeTAM without its oracle: an official-format file loads with its config inferred, vos info names it,
and its config survives vos's own checkpoint format."""
from __future__ import annotations

import torch
from oracle_free import random_state_dict

import vos
from vos.cli import main
from vos.model.config import ModelConfig, get_config


def test_edgetam_official_file_loads_and_is_described(tmp_path, capsys):
    with torch.device("meta"):
        shapes = vos.build_model(get_config("edgetam")).state_dict()
    state = random_state_dict({k: torch.empty(v.shape, dtype=v.dtype) for k, v in shapes.items()}, seed=0)
    path = tmp_path / "edgetam.pt"
    torch.save({"model": state}, path)
    model = vos.load_model(path, image_size=256)
    assert model.config == get_config("edgetam").replace(image_size=256)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    # The memory of one frame is 512 latent tokens whatever the frame's size.
    with torch.no_grad():
        features, pos = model.encode_memory(torch.randn(2, 256, 16, 16), torch.randn(2, 1, 256, 256),
                                            torch.tensor([[1.0], [-1.0]]))
    assert features.shape == pos.shape == (2, 64, 512)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "edgetam (EdgeTAM)" in out and "timm repvit_m1" in out


def test_edgetam_config_round_trips_through_a_dict():
    config = get_config("edgetam")
    assert ModelConfig.from_dict(config.to_dict()) == config
