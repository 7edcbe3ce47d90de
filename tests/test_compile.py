"""The compiled path (issue 32): ``load_model(..., compile=True)`` and ``--compile`` against eager, through the
predictor a user calls, on the same files: a whole video with a late object, a correction and propagation both
ways, in exact and fast mode; recompilations bounded; state dict unchanged; the one-line refusals."""
from __future__ import annotations

import warnings

import pytest
import torch
from oracle_free import random_state_dict, set_presence
from tiny import tiny_config
from videos import moving_shapes, write_jpegs

import vos
from vos.cli import main
from vos.model.compiled import compile_model, compile_stats, is_compiled
from vos.model.sam2 import SAM2Model
from vos.tracking.core import TrackerSettings
from vos.tracking.video_predictor import VideoPredictor
from vos.weights.checkpoint import save_model

NUM_FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_jpegs(moving_shapes(NUM_FRAMES, (96, 128)), tmp_path_factory.mktemp("compile") / "clip")


def _random_model(config) -> SAM2Model:
    model = SAM2Model(config).eval()
    model.load_state_dict(random_state_dict(model.state_dict(), seed=3))
    set_presence(model, 2.0)
    return model


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """Checkpoint files, each loaded twice below (eager and compiled), as a user would."""
    root = tmp_path_factory.mktemp("compile-ckpt")
    files = {"tiny": root / "tiny.pt"}
    save_model(_random_model(tiny_config(image_size=64)), files["tiny"])
    return files


def _session(model, clip, precision: str) -> list:
    """Click, track half-way, a late object, a correction on a tracked frame, then both ways from there."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # bfloat16 without native support says so once
        predictor = VideoPredictor(model, clip, TrackerSettings(precision=precision))
    results = [predictor.add_points(0, 1, points=[[40, 40]])]
    results += [r for _, r in predictor.track(0, max_frames=5)]
    results.append(predictor.add_points(5, 2, box=[70, 30, 110, 70]))
    results.append(predictor.add_points(3, 1, points=[[60, 50]], labels=[0], clear=False))
    results += [r for _, r in predictor.track(5, direction="both")]
    return results


def _assert_close(compiled: list, eager: list, tolerance: float) -> None:
    assert len(compiled) == len(eager)
    for ours, theirs in zip(compiled, eager):
        assert ours.obj_ids == theirs.obj_ids and ours.frame_idx == theirs.frame_idx
        diff = (ours.logits - theirs.logits).abs()
        assert float(diff.max()) <= tolerance, (ours.frame_idx, float(diff.max()))
        clear = theirs.logits.abs() > tolerance  # outside the band, the same mask
        assert torch.equal((ours.logits > 0)[clear], (theirs.logits > 0)[clear])


# bfloat16 rounds differently wherever the compiler fuses differently: its band is bfloat16's own (a few
# units of its 8-bit mantissa on logits of order 10), its masks agree outside it.
TOLERANCE = {"float32": 1e-3, "bfloat16": 0.25}


# The embedded model and hiera_t take minutes each to compile on 2 CPU cores: their parity is measured by
# benchmarks/embedded_fps.py and benchmarks/speed_vs_official.py (+compile modes), written down in their results.
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", ["tiny"])
def test_compiled_tracks_like_eager(checkpoints, clip, name, precision):
    eager = _session(vos.load_model(checkpoints[name]), clip, precision)
    model = vos.load_model(checkpoints[name], compile=True)
    assert is_compiled(model)
    before = compile_stats()
    compiled = _session(model, clip, precision)
    _assert_close(compiled, eager, TOLERANCE[precision])
    # Another session (a new video's worth of objects and memories) reuses the graphs: more objects, a fuller
    # bank or fewer pointers recompile a module once, then never again.
    first = compile_stats() - before
    again = _session(model, clip, precision)
    assert compile_stats().graphs == before.graphs + first.graphs
    _assert_close(again, eager, TOLERANCE[precision])


def test_compiling_keeps_the_model_and_its_weights():
    model = _random_model(tiny_config(image_size=64))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert compile_model(model) is model and is_compiled(model) and type(model) is SAM2Model
    assert list(model.state_dict()) == list(state)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_vos_track_compile_writes_the_masks_of_eager_and_says_what_compiling_cost(checkpoints, clip, tmp_path, capsys):
    common = ["track", str(clip), "--checkpoint", str(checkpoints["tiny"]), "--point", "40,40", "--no-video"]
    assert main([*common, "--out", str(tmp_path / "eager")]) == 0
    assert main([*common, "--out", str(tmp_path / "compiled"), "--compile"]) == 0
    out = capsys.readouterr().out
    assert "vos track --compile: " in out and "compiled in" in out
    eager, compiled = sorted((tmp_path / "eager" / "masks").iterdir()), sorted((tmp_path / "compiled" / "masks").iterdir())
    assert [p.name for p in eager] == [p.name for p in compiled] and len(eager) == NUM_FRAMES
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(eager, compiled))


def test_compile_with_the_onnx_runtime_is_refused_in_one_line(tmp_path, capsys):
    assert main(["track", str(tmp_path), "--runtime", "onnx", str(tmp_path), "--compile", "--point", "1,1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--compile is for the PyTorch runtime" in err
