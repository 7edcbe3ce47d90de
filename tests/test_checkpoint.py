"""Loading official-format and vos checkpoints, with the config inferred, and the errors for bad files."""
from __future__ import annotations

import pytest
import torch
from oracle_free import official_state_dict
from tiny import tiny_config

import vos
from vos.weights.checkpoint import CheckpointError


@pytest.fixture(scope="module")
def official_files(tmp_path_factory):
    """Random-weight checkpoints in the official ``{"model": state_dict}`` format, both versions (tiny)."""
    root = tmp_path_factory.mktemp("ckpt")
    files = {}
    for name in ("sam2_hiera_tiny", "sam2.1_hiera_tiny"):
        files[name] = root / f"{name}.pt"
        torch.save({"model": official_state_dict(name)}, files[name])
    return files


@pytest.mark.parametrize("name", ["sam2_hiera_tiny", "sam2.1_hiera_tiny"])
def test_official_checkpoint_loads_with_config_inferred(official_files, name):
    model = vos.load_model(official_files[name])
    assert model.config.name == name
    assert model.config.version == ("2.1" if name.startswith("sam2.1") else "2.0")
    saved = torch.load(official_files[name], weights_only=True)["model"]
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k


@pytest.mark.parametrize("name", sorted(vos.OFFICIAL_CONFIGS))
def test_config_inferred_for_every_official_key_set(name):
    state = official_state_dict(name, device="meta")
    assert vos.infer_config(state).name == name


def test_image_size_override_builds_a_smaller_model(official_files):
    model = vos.load_model(official_files["sam2.1_hiera_tiny"], image_size=256)
    assert model.config.image_size == 256
    with torch.no_grad():
        feats = model.encode_image(torch.zeros(1, 3, 256, 256))
    assert feats.vision_features.shape == (1, 256, 16, 16)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        vos.load_model(tmp_path / "nope.pt")


def test_non_checkpoint_file_is_rejected(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="notes.pt.*not a readable PyTorch checkpoint"):
        vos.load_model(path)


def test_truncated_checkpoint_is_rejected(official_files, tmp_path):
    data = official_files["sam2.1_hiera_tiny"].read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt.*the archive is truncated or corrupt"):
        vos.load_model(path)


def test_file_without_model_entry_is_rejected(tmp_path):
    path = tmp_path / "opt.pt"
    torch.save({"optimizer": {"lr": 1.0}, "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="no 'model' entry"):
        vos.load_model(path)


def test_missing_and_unexpected_keys_are_named_with_closest_config(tmp_path):
    state = official_state_dict("sam2.1_hiera_tiny")
    del state["sam_mask_decoder.iou_token.weight"]
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "edited.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as err:
        vos.load_model(path)
    message = str(err.value)
    assert "closest: 1 missing, 1 unexpected, 0 of wrong shape against sam2.1_hiera_tiny" in message
    assert "'sam_mask_decoder.iou_token.weight'" in message and "'extra.weight'" in message


def test_explicit_config_that_does_not_fit_is_a_clear_error(official_files):
    with pytest.raises(CheckpointError, match="does not match config 'sam2.1_hiera_base_plus'.*first shape mismatch"):
        vos.load_model(official_files["sam2.1_hiera_tiny"], config="sam2.1_hiera_base_plus")


def test_version_mismatch_names_the_2_1_keys(official_files):
    with pytest.raises(CheckpointError, match="does not match config 'sam2.1_hiera_tiny'.*first missing key: 'no_obj_embed_spatial'"):
        vos.load_model(official_files["sam2_hiera_tiny"], config="sam2.1_hiera_tiny")


def test_failed_load_leaves_no_partial_model(tmp_path):
    """A shape mismatch is detected before any weight is copied: nothing half-loaded is returned."""
    state = official_state_dict("sam2.1_hiera_tiny")
    state["no_obj_ptr"] = torch.zeros(1, 7)
    path = tmp_path / "bad_shape.pt"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError, match="'no_obj_ptr' is \\(1, 7\\) in the checkpoint, \\(1, 256\\) in the model"):
        vos.load_model(path, config="sam2.1_hiera_tiny")


def test_save_model_round_trips_config_and_weights(tmp_path):
    model = vos.build_model(tiny_config())
    path = vos.save_model(model, tmp_path / "sub" / "ours.pt")
    assert not list(path.parent.glob("*.tmp"))
    loaded = vos.load_model(path)
    assert loaded.config == model.config
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k


def test_half_precision_weights_load_into_a_float32_model(tmp_path):
    model = vos.build_model(tiny_config())
    full = vos.save_model(model, tmp_path / "full.pt")
    half = vos.save_model(model, tmp_path / "half.pt", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded = vos.load_model(half)
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert b.dtype == a.dtype, k
        torch.testing.assert_close(b, a.half().to(a.dtype), rtol=0, atol=0, msg=k)


def test_the_embedded_model_loads_by_default():
    model = vos.load_model()
    assert model.config.name == "vos_small" and not model.training
    assert vos.DEFAULT_WEIGHTS.stat().st_size <= 25 * 2**20


def test_bare_state_dict_of_custom_model_needs_its_config(tmp_path):
    model = vos.build_model(tiny_config())
    path = tmp_path / "bare.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(CheckpointError, match="fits no known config"):
        vos.load_model(path)
    assert vos.load_model(path, config=tiny_config()).config == tiny_config()
