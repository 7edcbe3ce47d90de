"""Our state dict has exactly the official key list (names, order, shapes) for all eight configs."""
from __future__ import annotations

import json

import pytest
import torch

from vos.model.config import OFFICIAL_CONFIGS, neck_channels
from vos.model.sam2 import SAM2Model

SHORT = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}


@pytest.mark.parametrize("name", sorted(OFFICIAL_CONFIGS))
def test_state_dict_keys_and_shapes_equal_official_list(shared_dir, name):
    version, size = name.split("_hiera_")
    ref_file = shared_dir / "reference" / "sam2-checkpoint-keys" / f"keys_{version}_hiera_{SHORT[size]}.txt"
    expected = [tuple(line.split("\t")) for line in ref_file.read_text().splitlines() if line.strip()]
    with torch.device("meta"):
        model = SAM2Model(OFFICIAL_CONFIGS[name])
    ours = [(k, str(tuple(v.shape))) for k, v in model.state_dict().items()]
    assert ours == expected


@pytest.mark.parametrize("name", sorted(OFFICIAL_CONFIGS))
def test_parameter_counts_and_trunk_structure_equal_official(shared_dir, name):
    stats = json.loads((shared_dir / "reference" / "sam2-checkpoint-keys" / "sam2_model_stats.json").read_text())
    version, size = name.split("_hiera_")
    entry = stats[f"{version}_hiera_{SHORT[size]}"]
    with torch.device("meta"):
        model = SAM2Model(OFFICIAL_CONFIGS[name])
    state = model.state_dict()
    assert len(state) == entry["num_keys"]
    assert sum(v.numel() for v in state.values()) == entry["sd_numel"]
    assert sum(p.numel() for p in model.parameters()) == entry["params"]
    trunk = OFFICIAL_CONFIGS[name].trunk
    assert trunk.stage_ends == entry["stage_ends"]
    assert trunk.q_pool_blocks == entry["q_pool_blocks"]
    assert neck_channels(trunk) == entry["trunk_channel_list"]
    assert [b.window_size for b in model.image_encoder.trunk.blocks] == entry["window_sizes"]
