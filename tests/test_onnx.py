"""ONNX export and the ONNX Runtime backend: every graph against the PyTorch method it stands for, whole videos
through the public entry points (VideoPredictor, LiveTracker, vos track) on both runtimes, and the errors of
exports that do not match their manifest and of inputs outside what a graph takes.

Both models are exported once per module through `vos export`: the embedded model, and SAM 2.1 hiera_t with
random weights in the official checkpoint format at 256 px; SAM 2.0's flags on a tiny config."""
from __future__ import annotations

import json
import os
import shutil
import stat
import sys

import av
import numpy as np
import pytest
import torch
from oracle_free import random_state_dict, set_presence
from test_live_streams import rtsp  # noqa: F401 (the RTSP server on loopback, a fixture)
from tiny import tiny_config
from videos import moving_shapes, write_jpegs

from evaluation.masks import read_index_png
from vos import load_model
from vos.cli import main
from vos.errors import OnnxExtraMissing
from vos.export.exporter import check_exportable, example_inputs, export_model
from vos.export.format import MANIFEST, OnnxExportError, graph_specs
from vos.export.runtime import OnnxModel
from vos.model.config import ModelConfig, get_config
from vos.model.sam2 import SAM2Model
from vos.tracking.core import TrackerSettings
from vos.tracking.live_tracker import LiveTracker, MultiStreamTracker
from vos.tracking.prompts import Prompt
from vos.tracking.video_predictor import VideoPredictor

STAGE_TOL = 1e-4
VIDEO_TOL = 1e-3
SIZE = (120, 200)  # the test clip's (H, W)
NUM_FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_jpegs(moving_shapes(NUM_FRAMES, SIZE), tmp_path_factory.mktemp("clip"))


def _export(folder, name: str):
    """``(checkpoint arguments for the CLI, PyTorch model, export folder)``, exported with `vos export`."""
    if name == "embedded":
        args = []
    else:
        # Random weights in the official format, objects judged present so that masks move with the video.
        model = SAM2Model(get_config(name).replace(image_size=256)).eval()
        model.load_state_dict(random_state_dict(model.state_dict(), seed=1))
        set_presence(model, 2.0)
        checkpoint = folder.parent / f"{name}.pt"
        torch.save({"model": model.state_dict()}, checkpoint)
        args = [str(checkpoint), "--image-size", "256"]
    assert main(["export", *args, "--onnx", str(folder)]) == 0
    model = load_model(*(args[:1] or [None]), image_size=int(args[2]) if args else None)
    return args, model, folder


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("onnx") / "export", "embedded")


@pytest.fixture(scope="module")
def hiera_t(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("onnx") / "export", "sam2.1_hiera_tiny")


@pytest.fixture(scope="module", params=["embedded", "hiera_t"])
def exported(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def onnx_model(exported):
    return OnnxModel(exported[2])


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a.float() - b.float()).abs().max())


def _heads_diff(a, b) -> float:
    fields = ["low_res_multimasks", "high_res_multimasks", "ious", "low_res_masks", "high_res_masks", "obj_ptr",
              "object_score"]
    return max(_diff(getattr(a, f), getattr(b, f)) for f in fields)


# ---------------------------------------------------------------- every graph against its PyTorch method
def test_manifest_describes_the_export(exported):
    _, model, folder = exported
    manifest = json.loads((folder / MANIFEST).read_text())
    assert ModelConfig.from_dict(manifest["config"]) == model.config and manifest["image_size"] == model.image_size
    assert manifest["opset"] == 18
    assert set(manifest["graphs"]) == set(graph_specs(model.config))
    for name, entry in manifest["graphs"].items():
        assert (folder / entry["file"]).is_file()
        assert entry["max_abs_diff_vs_torch"] <= STAGE_TOL, name
    # Writes into views (RoPE's in-place halves, the key assembly) would become ONNX scatters, slow in ONNX
    # Runtime; the exported path is functional.
    import onnx

    for entry in manifest["graphs"].values():
        ops = {node.op_type for node in onnx.load(str(folder / entry["file"])).graph.node}
        assert not {op for op in ops if op.startswith("Scatter")}, entry["file"]
    attention = manifest["graphs"]["memory_attention"]["inputs"]
    assert {i["name"]: i["shape"] for i in attention}["memories"][:2] == ["objects", "frames"]
    assert not list(folder.glob(".*"))  # no temporary files left
    # The modes of a plain open() under the umask, as every output's (test_file_modes.py)
    umask = os.umask(0o022)
    os.umask(umask)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in folder.iterdir()} == \
        {p.name: oct(0o666 & ~umask) for p in folder.iterdir()}


@torch.no_grad()
def test_image_encoder_and_memory_encoder_match_pytorch(exported, onnx_model):
    _, model, _ = exported
    s = model.image_size
    image = torch.randn(1, 3, s, s, generator=torch.Generator().manual_seed(0))
    ours, theirs = model.encode_image(image), onnx_model.encode_image(image)
    for a, b in zip(ours.backbone_fpn + ours.vision_pos_enc, theirs.backbone_fpn + theirs.vision_pos_enc):
        assert _diff(a, b) <= STAGE_TOL
    vision = ours.vision_features
    logits = 8 * torch.randn(3, 1, s, s, generator=torch.Generator().manual_seed(1))
    scores = torch.tensor([[2.0], [-1.0], [0.5]])
    for binarize in (False, True):
        for a, b in zip(model.encode_memory(vision, logits, scores, binarize),
                        onnx_model.encode_memory(vision, logits, scores, binarize)):
            assert _diff(a, b) <= STAGE_TOL, binarize


@torch.no_grad()
@pytest.mark.parametrize("objects, frames, pointers", [(1, 1, 0), (2, 3, 1), (3, 7, 16)])
def test_memory_attention_matches_pytorch_for_any_number_of_frames_pointers_and_objects(
    exported, onnx_model, objects, frames, pointers
):
    _, model, _ = exported
    spec = graph_specs(model.config)["memory_attention"]
    x = example_inputs(spec, model.config, {"objects": objects, "frames": frames, "pointers": pointers}, seed=objects)
    args = [x["curr"], x["curr_pos"], x["memories"], x["time_positions"]]
    ptrs = [x["pointers"], x["pointer_times"]] if pointers else []
    assert _diff(model.condition_on_memories(*args, *ptrs), onnx_model.condition_on_memories(*args, *ptrs)) <= STAGE_TOL
    h = model.image_size // 16
    features = x["curr"].transpose(1, 2).reshape(objects, model.hidden_dim, h, h)
    assert _diff(model.without_memory(features), onnx_model.without_memory(features)) <= STAGE_TOL


@torch.no_grad()
@pytest.mark.parametrize("points", [0, 1, 4])
@pytest.mark.parametrize("with_mask", [False, True])
def test_prompt_encoder_and_decoder_match_pytorch(exported, onnx_model, points, with_mask):
    _, model, _ = exported
    s, b = model.image_size, 3
    gen = torch.Generator().manual_seed(points)
    image = torch.randn(1, 3, s, s, generator=gen)
    feats = model.encode_image(image)
    features = feats.vision_features.expand(b, -1, -1, -1) + 0.1 * torch.randn(b, *feats.vision_features.shape[1:], generator=gen)
    high_res = [x.expand(b, -1, -1, -1) for x in feats.high_res_features]
    coords = torch.rand(b, points, 2, generator=gen) * s if points else None
    labels = torch.randint(0, 4, (b, points), generator=gen, dtype=torch.int32) if points else None
    mask = 6 * torch.randn(b, 1, s // 4, s // 4, generator=gen) if with_mask else None
    for multimask in (False, True):
        ours = model.predict_masks(features, high_res, coords, labels, mask, multimask)
        theirs = onnx_model.predict_masks(features, high_res, coords, labels, mask, multimask)
        assert _heads_diff(ours, theirs) <= STAGE_TOL, multimask
        assert ours.low_res_multimasks.shape[1] == (3 if multimask else 1)
    prompt_mask = (torch.rand(b, 1, s, s, generator=gen) > 0.6).float()
    prompt_mask[1] = 0  # an object whose mask vanished: the pointer is the learned no-object pointer
    ours, theirs = model.mask_as_output(features, high_res, prompt_mask), onnx_model.mask_as_output(features, high_res, prompt_mask)
    assert _heads_diff(ours, theirs) <= STAGE_TOL


# ---------------------------------------------------------------- whole videos through the public entry points
def _disc(center, radius):
    yy, xx = np.mgrid[: SIZE[0], : SIZE[1]]
    return (xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius**2


def _offline_run(model, clip) -> list:
    """Two objects on frame 0 (a click, a box), a third from a mask on frame 4, a correction on frame 7."""
    predictor = VideoPredictor(model, clip, TrackerSettings.official())
    predictor.add_points(0, 1, [[45, 50]])
    predictor.add_points(0, 2, box=[130, 70, 165, 105])
    results = list(predictor.propagate(0, 3))
    predictor.add_mask(4, 3, _disc((70, 60), 12))
    results += list(predictor.propagate(4, 2))
    list(predictor.propagate(7, 0))  # track frame 7, then correct it
    predictor.add_points(7, 1, [[62, 60], [10, 10]], [1, 0])
    results += list(predictor.propagate(7))
    return results


def _assert_same_results(ours, theirs):
    """Logits within 1e-3 on every frame, and the same masks but where PyTorch's logit is that close to 0."""
    assert [r.frame_idx for r in ours] == [r.frame_idx for r in theirs] == list(range(NUM_FRAMES))
    for a, b in zip(ours, theirs):
        assert a.obj_ids == b.obj_ids
        assert _diff(a.logits, b.logits) <= VIDEO_TOL, a.frame_idx
        differ = a.masks != b.masks
        assert (a.logits[:, 0].abs().numpy()[differ] <= VIDEO_TOL).all(), a.frame_idx
    assert all(r.masks.any() for r in ours)


def test_video_predictor_on_onnx_runtime_gives_pytorchs_masks(exported, onnx_model, clip):
    _, model, _ = exported
    _assert_same_results(_offline_run(model, clip), _offline_run(onnx_model, clip))


def test_sam2_0_models_export_and_track_too(clip, tmp_path):
    """SAM 2.0's flags (no temporal encoding of pointers, no no-object embedding in memories) on a tiny config:
    the graphs hold the other branches."""
    flags = dict(no_obj_embed_spatial=False, add_tpos_enc_to_obj_ptrs=False, proj_tpos_enc_in_obj_ptrs=False,
                 use_signed_tpos_enc_to_obj_ptrs=False)
    model = SAM2Model(tiny_config(image_size=64, **flags)).eval()
    model.load_state_dict(random_state_dict(model.state_dict(), seed=3))
    set_presence(model, 2.0)
    export_model(model, tmp_path / "export")
    _assert_same_results(_offline_run(model, clip), _offline_run(OnnxModel(tmp_path / "export"), clip))


def test_live_tracker_on_onnx_runtime_gives_pytorchs_masks(embedded):
    # The predictor test covers both models; the live tracker runs the same per-frame path, on the embedded model.
    _, model, folder = embedded
    onnx_model = OnnxModel(folder)
    frames = moving_shapes(NUM_FRAMES, SIZE)
    prompts = {0: {1: Prompt.make(points=[[45, 50]]), 2: Prompt.make(box=[130, 70, 165, 105])},
               4: {3: Prompt.make(mask=_disc((70, 60), 12))}, 7: {1: Prompt.make(points=[[62, 60]])}}
    runs = []
    for m in (model, onnx_model):
        tracker = LiveTracker(m)
        runs.append([tracker.step(image, prompts.get(i)) for i, image in enumerate(frames)])
    _assert_same_results(*runs)


def test_several_streams_on_onnx_runtime_get_what_a_tracker_of_their_own_would(embedded):
    """The exported graphs take one frame's features: MultiStreamTracker then runs each stream's frame on its
    own, with the results of a LiveTracker of its own, bit for bit."""
    onnx_model = OnnxModel(embedded[2])
    clips = {"a": moving_shapes(4, SIZE), "b": moving_shapes(4, SIZE, seed=3)}
    prompts = {"a": {1: Prompt.make(points=[[45, 50]])}, "b": {1: Prompt.make(box=[130, 70, 165, 105])}}
    tracker = MultiStreamTracker(onnx_model)
    together = [tracker.step({k: c[i] for k, c in clips.items()}, prompts if i == 0 else None) for i in range(4)]
    for k, frames in clips.items():
        alone = LiveTracker(onnx_model)
        for i, image in enumerate(frames):
            ours, theirs = together[i][k], alone.step(image, prompts[k] if i == 0 else None)
            assert torch.equal(ours.logits, theirs.logits) and torch.equal(ours.object_scores, theirs.object_scores)


def test_vos_track_with_runtime_onnx_writes_the_same_masks(embedded, clip, tmp_path):
    # The command line builds the same predictor for any model: once, on the embedded model, keeps the module fast.
    args, _, folder = embedded
    prompts = ["--obj", "1", "--point", "45,50", "--obj", "2", "--box", "130,70,165,105",
               "--obj", "3", "--frame", "4", "--point", "70,60", "--obj", "1", "--frame", "7", "--point", "62,60"]
    assert main(["track", str(clip), *prompts, *(["--checkpoint", *args] if args else []), "--out",
                 str(tmp_path / "torch"), "--no-video"]) == 0
    assert main(["track", str(clip), *prompts, "--runtime", "onnx", str(folder), "--out", str(tmp_path / "onnx"),
                 "--no-video"]) == 0
    files = sorted(p.name for p in (tmp_path / "torch" / "masks").iterdir())
    assert len(files) == NUM_FRAMES and files == sorted(p.name for p in (tmp_path / "onnx" / "masks").iterdir())
    labels = [read_index_png(tmp_path / "torch" / "masks" / f) for f in files]
    assert {1, 2, 3} <= set(np.unique(np.stack(labels)))
    # The same masks, but for pixels whose logits are within float rounding of the threshold (the predictor test
    # above checks those with the logits at hand): at most 0.1% of a frame.
    for f, ours in zip(files, labels):
        assert (ours != read_index_png(tmp_path / "onnx" / "masks" / f)).mean() <= 1e-3, f


@pytest.mark.slow
def test_vos_live_with_runtime_onnx_tracks_an_rtsp_stream(embedded, rtsp, tmp_path, capsys):
    out = tmp_path / "live.mp4"
    assert main(["live", rtsp.url(), "--runtime", "onnx", str(embedded[2]), "--point", "160,120", "--obj", "2",
                 "--box", "100,60,220,180", "--out", str(out), "--max-frames", "20", "--no-window"]) == 0
    assert "done: 20 frames" in capsys.readouterr().out
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 20


# ---------------------------------------------------------------- errors
@pytest.fixture
def copy_of(embedded, tmp_path):
    def make():
        folder = tmp_path / "copy"
        shutil.copytree(embedded[2], folder)
        return folder
    return make


def test_incomplete_or_altered_exports_are_refused_naming_the_file(copy_of):
    folder = copy_of()
    (folder / "memory_encoder.onnx").unlink()
    with pytest.raises(OnnxExportError, match=r"memory_encoder\.onnx is missing"):
        OnnxModel(folder)
    with open(folder / "mask_decoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(OnnxExportError, match=r"mask_decoder\.onnx is not the file this export wrote"):
        OnnxModel(folder)
    (folder / MANIFEST).unlink()
    with pytest.raises(OnnxExportError, match=r"manifest\.json is missing: .* not a complete ONNX export"):
        OnnxModel(folder)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        OnnxModel(folder / "nothing")


def test_a_manifest_that_claims_another_config_is_refused(embedded, copy_of):
    _, model, _ = embedded
    folder = copy_of()
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["config"]["image_size"] = manifest["image_size"] = 2 * model.image_size
    (folder / MANIFEST).write_text(json.dumps(manifest))
    # The graphs the manifest lists are those of the real size: the manifest contradicts its own config.
    with pytest.raises(OnnxExportError, match=rf"graph 'image_encoder' is image_encoder\.onnx with inputs image "
                                              rf"\(1, 3, {model.image_size}, {model.image_size}\)"):
        OnnxModel(folder)
    # A manifest rewritten consistently for the other size, over the graphs of this one.
    bigger = model.config.replace(image_size=2 * model.image_size)
    for name, spec in graph_specs(bigger).items():
        manifest["graphs"][name].update(spec.to_dict())
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(OnnxExportError, match=r"image_encoder\.onnx: input 'image' is tensor\(float\) "
                                              rf"\(1, 3, {model.image_size}, {model.image_size}\); .* at "
                                              rf"{2 * model.image_size} px export's is float32"):
        OnnxModel(folder)


def test_an_export_written_before_a_config_field_was_added_still_loads(embedded, copy_of):
    """An older vos wrote the manifest's config, and the digest in each graph, without the fields added since
    (here the generator's defaults): the graphs match the manifest as stored, and the config reads the
    missing fields from the known config of its name."""
    import onnx

    from vos.export.format import CONFIG_KEY, config_digest, sha256

    _, model, _ = embedded
    folder = copy_of()
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["config"]["generator"]
    for entry in manifest["graphs"].values():
        graph = onnx.load(str(folder / entry["file"]))
        onnx.helper.set_model_props(graph, {CONFIG_KEY: config_digest(manifest["config"])})
        onnx.save(graph, str(folder / entry["file"]))
        entry["sha256"] = sha256(folder / entry["file"])
    (folder / MANIFEST).write_text(json.dumps(manifest))
    assert OnnxModel(folder).config == model.config


@pytest.mark.parametrize("change", [{"num_maskmem": 3}, {"use_signed_tpos_enc_to_obj_ptrs": False},
                                    {"multimask_output_in_sam": False}])
def test_graphs_exported_from_another_config_than_the_manifest_claims_are_refused(embedded, copy_of, change):
    folder = copy_of()
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["config"].update(change)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(OnnxExportError, match=r"\.onnx was exported from another model config than the one "
                                              r".*manifest\.json claims"):
        OnnxModel(folder)


@torch.no_grad()
def test_inputs_outside_what_a_graph_takes_are_refused_naming_the_input(embedded, clip):
    _, model, folder = embedded
    onnx_model = OnnxModel(folder)
    s = model.image_size
    with pytest.raises(OnnxExportError, match=rf"image_encoder\.onnx: input 'image' is \(1, 3, {s // 2}, {s // 2}\); "
                                              rf"the export \(.* at {s} px\) takes \(1, 3, {s}, {s}\)"):
        onnx_model.encode_image(torch.zeros(1, 3, s // 2, s // 2))
    spec = graph_specs(model.config)["memory_attention"]
    x = example_inputs(spec, model.config)
    with pytest.raises(OnnxExportError, match=r"memory_attention\.onnx: input 'memories' has 3 objects, input 'curr' 2"):
        onnx_model.condition_on_memories(x["curr"], x["curr_pos"], torch.cat([x["memories"], x["memories"][:1]]),
                                          x["time_positions"])
    with pytest.raises(OnnxExportError, match=r"'time_positions' holds \[0, 7\]; the model has temporal slots 0-6"):
        onnx_model.condition_on_memories(x["curr"], x["curr_pos"], x["memories"][:, :2], torch.tensor([0, 7]))
    with pytest.raises(OnnxExportError, match=r"memory_attention\.onnx: input 'memories' has 0 frames; the graph "
                                              r"takes at least 1"):
        onnx_model.condition_on_memories(x["curr"], x["curr_pos"], x["memories"][:, :0], x["time_positions"][:0])
    d = example_inputs(graph_specs(model.config)["mask_decoder"], model.config)
    with pytest.raises(OnnxExportError, match=r"mask_decoder\.onnx: input 'point_labels' takes int32 values, not "
                                              r"torch\.float32"):
        onnx_model.predict_masks(d["image_embed"], [d["high_res_feats_0"], d["high_res_feats_1"]], d["point_coords"],
                                 d["point_labels"].float() + 0.7)
    with pytest.raises(ValueError, match="precision 'bfloat16' runs the model under torch.autocast"):
        VideoPredictor(onnx_model, clip, TrackerSettings(precision="bfloat16"))


def test_command_line_errors(embedded, clip, tmp_path, capsys):
    args, _, folder = embedded
    assert main(["track", str(clip), "--point", "45,50", "--runtime", "onnx", str(folder), "--image-size", "512",
                 "--out", str(tmp_path / "a")]) == 2
    assert "--runtime onnx runs the model exported in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["track", str(clip), "--point", "45,50", "--runtime", "onnx"])
    assert "--runtime takes 'torch' or 'onnx DIR'" in capsys.readouterr().err
    assert main(["track", str(clip), "--point", "45,50", "--runtime", "onnx", str(tmp_path / "none"),
                 "--out", str(tmp_path / "b")]) == 2
    assert "no such folder" in capsys.readouterr().err
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert main(["export", *args, "--onnx", str(folder)]) == 2
    assert "already holds an export" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_missing_onnx_packages_name_the_extra(embedded, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(OnnxExtraMissing, match=r'pip install "vos\[onnx\]"'):
        OnnxModel(embedded[2])
    assert main(["export", "--onnx", str(tmp_path / "x")]) == 2
    assert 'pip install "vos[onnx]"' in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_failed_or_interrupted_export_changes_nothing(embedded, copy_of, tmp_path, monkeypatch, capsys):
    args, model, _ = embedded
    folder = copy_of()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    import vos.export.exporter as onnx_export

    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 3:  # two graphs already written
            raise KeyboardInterrupt
        return export_graph(*a, **k)

    export_graph = onnx_export._export_graph
    monkeypatch.setattr(onnx_export, "_export_graph", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_model(model, folder, overwrite=True)
    # The previous export is whole and usable; no temporary folder is left behind.
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    OnnxModel(folder)

    def broken(*a, **k):
        raise RuntimeError("Failed to convert the exported program to an ONNX model\nlong details")

    monkeypatch.setattr(onnx_export, "_export_graph", broken)
    assert main(["export", *args, "--onnx", str(folder), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "image_encoder.onnx: the ONNX exporter failed" in err and "Failed to convert" in err
    assert "long details" not in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert main(["export", *args, "--onnx", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new" / MANIFEST).exists() and not list((tmp_path / "new").iterdir())
    capsys.readouterr()


def test_families_without_graphs_are_refused_before_anything_is_written():
    for name in ("edgetam", "efficienttam_ti", "efficienttam_s_1"):
        with pytest.raises(ValueError, match=f"{name} .*EdgeTAM and EfficientTAM are not exported yet"):
            check_exportable(get_config(name))
