"""Sinks (mask PNGs, overlay videos), prompt files, and the `vos track` / `vos demo` jobs."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
import supervision as sv
from PIL import Image
from tiny import tiny_tracking_model
from videos import moving_shapes, write_jpegs

from evaluation.davis import evaluate_sequence
from evaluation.masks import read_index_png
from evaluation.sav import evaluate_video
from streams import FrameFolder, SourceError, VideoFile
from streams.masks import (
    PaletteMaskWriter,
    PerObjectMaskWriter,
    davis_palette,
    write_palette_png,
)
from streams.overlay import OverlayVideoWriter
from vos.cli import main
from vos.jobs.track import TrackError, track_video
from vos.tracking.prompts import (
    FramePrompt,
    Prompt,
    PromptError,
    merge_prompts,
    read_prompt_file,
)
from vos.weights.checkpoint import save_model


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


# ---------------------------------------------------------------- mask sinks
def test_palette_pngs_round_trip_with_the_davis_palette(tmp_path):
    labels = np.zeros((30, 40), np.uint8)
    labels[5:10, 5:10], labels[20:, 30:] = 1, 7
    path = PaletteMaskWriter(tmp_path).write("00003", labels)
    assert path == tmp_path / "00003.png"
    np.testing.assert_array_equal(read_index_png(path), labels)
    with Image.open(path) as image:
        assert image.mode == "P" and image.getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]
    assert davis_palette()[3 * 7 : 3 * 8] == [128, 128, 128]
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_mask_writes_are_atomic(tmp_path, monkeypatch):
    path = write_palette_png(tmp_path / "a.png", np.ones((4, 4), np.uint8))

    def crash(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(OSError):
        write_palette_png(path, np.zeros((4, 4), np.uint8))
    monkeypatch.undo()
    np.testing.assert_array_equal(read_index_png(path), np.ones((4, 4)))  # the old file is intact


def test_per_object_pngs_follow_the_sav_layout(tmp_path):
    masks = {1: np.zeros((20, 30), bool), 12: np.zeros((20, 30), bool)}
    masks[1][2:8, 2:8] = True
    masks[12][10:, 10:] = True
    writer = PerObjectMaskWriter(tmp_path / "pred" / "vid")
    gt = PerObjectMaskWriter(tmp_path / "gt" / "vid")
    for name in ("00000", "00004", "00008"):
        writer.write(name, masks)
        gt.write(name, masks)
    with Image.open(tmp_path / "pred" / "vid" / "012" / "00004.png") as image:
        values = np.array(image)
    assert set(np.unique(values)) == {0, 255}
    scores = evaluate_video(tmp_path / "gt" / "vid", tmp_path / "pred" / "vid")
    assert [s.summary()["J&F-Mean"] for s in scores] == [1.0, 1.0]


# ---------------------------------------------------------------- overlay video
def _detections(masks: np.ndarray, ids: list[int]) -> sv.Detections:
    ids = np.array(ids)
    return sv.Detections(xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks, class_id=ids, tracker_id=ids)


def test_overlay_video_draws_each_object_in_its_own_colour(tmp_path):
    h, w = 61, 81  # odd: padded to even for 4:2:0
    masks = np.zeros((2, h, w), bool)
    masks[0, 10:40, 5:35], masks[1, 10:40, 45:75] = True, True
    with OverlayVideoWriter(tmp_path / "o.mp4", fps=10) as writer:
        for _ in range(12):
            writer.write(np.full((h, w, 3), 90, np.uint8), _detections(masks, [1, 2]))
    frames = decode(tmp_path / "o.mp4")
    assert len(frames) == 12 and frames[0].shape == (62, 82, 3)
    a, b, background = frames[5][25, 20].astype(int), frames[5][25, 60].astype(int), frames[5][55, 40].astype(int)
    assert np.abs(a - b).sum() > 60 and np.abs(a - background).sum() > 60
    assert np.abs(background - 90).max() < 12


def test_overlay_of_a_killed_writer_is_playable(tmp_path):
    """A process killed mid-run (no close) leaves a fragmented MP4 that decodes up to its last fragment."""
    script = textwrap.dedent(f"""
        import os, numpy as np
        from streams.overlay import OverlayVideoWriter
        writer = OverlayVideoWriter({str(tmp_path / 'k.mp4')!r}, fps=5)
        for i in range(40):
            writer.write(np.full((48, 64, 3), i * 5, np.uint8))
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[1])
    frames = decode(tmp_path / "k.mp4")
    assert 25 <= len(frames) <= 40


@pytest.mark.slow
def test_real_clip_round_trips_through_the_overlay_writer(shared_dir, tmp_path):
    source = VideoFile(shared_dir / "data" / "videos" / "bedroom.mp4")
    with source, OverlayVideoWriter(tmp_path / "copy.mp4", fps=source.fps) as writer:
        originals = [source.read(i).image for i in range(30)]
        for image in originals:
            writer.write(image)
    copies = decode(tmp_path / "copy.mp4")
    assert len(copies) == 30
    h, w = originals[0].shape[:2]
    mse = np.mean([(a.astype(float) - b[:h, :w].astype(float)) ** 2 for a, b in zip(originals, copies)])
    assert 10 * np.log10(255**2 / mse) > 30  # PSNR in dB


# ---------------------------------------------------------------- prompts
def test_prompt_file_reads_points_boxes_and_masks(tmp_path):
    mask = np.zeros((96, 160), np.uint8)
    mask[10:20, 10:20] = 2
    Image.fromarray(mask).save(tmp_path / "m.png")
    (tmp_path / "p.json").write_text(json.dumps([
        {"frame": 0, "obj_id": 1, "points": [[30, 40], [35, 45]], "labels": [1, 0]},
        {"frame": 3, "obj_id": 1, "box": [1, 2, 30, 40]},
        {"frame": 0, "obj_id": 2, "mask": "m.png"},
    ]))
    prompts = read_prompt_file(tmp_path / "p.json")
    assert [(p.frame, p.obj_id) for p in prompts] == [(0, 1), (3, 1), (0, 2)]
    assert prompts[0].prompt.labels.tolist() == [1, 0]
    assert prompts[2].prompt.mask.sum() == 100
    (tmp_path / "bad.json").write_text('[{"frame": 0, "obj": 1, "points": [[1, 2]]}]')
    with pytest.raises(PromptError, match=r"bad.json, prompt 0: unknown keys \['obj'\]"):
        read_prompt_file(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(PromptError, match="broken.json: not valid JSON"):
        read_prompt_file(tmp_path / "broken.json")


def test_prompts_for_one_object_and_frame_merge():
    merged = merge_prompts([
        FramePrompt(0, 1, Prompt.make(points=[[1, 2]])),
        FramePrompt(0, 2, Prompt.make(points=[[5, 5]])),
        FramePrompt(0, 1, Prompt.make(box=[0, 0, 9, 9])),
        FramePrompt(0, 1, Prompt.make(points=[[3, 4]], labels=[0])),
    ])
    assert [(p.frame, p.obj_id) for p in merged] == [(0, 1), (0, 2)]
    assert merged[0].prompt.points.tolist() == [[1, 2], [3, 4]] and merged[0].prompt.labels.tolist() == [1, 0]
    assert merged[0].prompt.box.tolist() == [0, 0, 9, 9]


# ---------------------------------------------------------------- track
@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    model = tiny_tracking_model()
    return save_model(model, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    return write_jpegs(moving_shapes(12), tmp_path_factory.mktemp("video") / "frames")


def _model(path):
    import vos

    return vos.load_model(path)


def test_track_writes_masks_and_an_overlay_for_every_frame(tiny_checkpoint, frames_dir, tmp_path):
    prompts = [FramePrompt(0, 1, Prompt.make(points=[[40, 48]])), FramePrompt(0, 3, Prompt.make(box=[90, 20, 140, 70]))]
    out = track_video(_model(tiny_checkpoint), frames_dir, prompts, tmp_path, progress=False)
    assert out.frames == 12 and out.overlay == tmp_path / "overlay.mp4"
    assert sorted(p.name for p in out.masks.iterdir()) == [f"{i:05d}.png" for i in range(12)]
    assert set(np.unique(read_index_png(out.masks / "00000.png"))) <= {0, 1, 3}
    assert len(decode(out.overlay)) == 12


def test_track_from_a_later_frame_goes_both_ways_in_sav_layout(tiny_checkpoint, frames_dir, tmp_path):
    prompts = [FramePrompt(5, 2, Prompt.make(points=[[60, 48]]))]
    out = track_video(_model(tiny_checkpoint), frames_dir, prompts, tmp_path, masks="sav", progress=False)
    assert out.frames == 12
    assert sorted(p.name for p in (out.masks / "002").iterdir()) == [f"{i:05d}.png" for i in range(12)]
    assert len(decode(out.overlay)) == 12


class _BrokenAt(FrameFolder):
    def __init__(self, root, bad: int) -> None:
        self.bad = bad
        super().__init__(root)

    def read(self, index: int):
        if index == self.bad:
            raise SourceError(f"{self.files[index]}: frame {index} is corrupt")
        return super().read(index)


def test_interrupted_track_leaves_valid_partial_outputs(tiny_checkpoint, frames_dir, tmp_path):
    prompts = [FramePrompt(0, 1, Prompt.make(points=[[40, 48]]))]
    with pytest.raises(TrackError, match="frame 7 is corrupt; kept masks of frames 0-6 in .*, .*overlay.mp4 with "
                       "frames 0-6") as err:
        track_video(_model(tiny_checkpoint), _BrokenAt(frames_dir, 7), prompts, tmp_path, progress=False)
    assert isinstance(err.value.__cause__, SourceError) and err.value.kept.mask_frames == list(range(7))
    written = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert written == [f"{i:05d}.png" for i in range(7)]
    for name in written:
        assert read_index_png(tmp_path / "masks" / name).shape == (96, 160)
    assert len(decode(tmp_path / "overlay.mp4")) == 7


def test_vos_track_command_line(tiny_checkpoint, frames_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["track", str(frames_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                 "--obj", "1", "--point", "40,48", "--point", "10,10,0", "--obj", "4", "--box", "90,20,140,70"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tracked 2 object(s) over 12 frames" in printed and f"wrote {out / 'overlay.mp4'}" in printed
    (tmp_path / "p.json").write_text(json.dumps([{"frame": 2, "obj_id": 9, "points": [[40, 48]]}]))
    assert main(["track", str(frames_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "j"),
                 "--prompts", str(tmp_path / "p.json"), "--masks", "none", "--no-video"]) == 0
    assert not (tmp_path / "j" / "masks").exists()


def test_vos_track_reports_bad_input_clearly(tiny_checkpoint, frames_dir, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert main(["track", str(corrupt), "--checkpoint", str(tiny_checkpoint), "--point", "1,1"]) == 2
    assert "corrupt.mp4" in capsys.readouterr().err
    assert main(["track", str(frames_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "o"),
                 "--obj", "2", "--point", "400,10"]) == 2
    assert "object 2, frame 0: click (400, 10) is outside the 160x96 frame" in capsys.readouterr().err
    assert main(["track", str(frames_dir), "--checkpoint", str(tiny_checkpoint), "--point", "1"]) == 2
    assert "--point '1'" in capsys.readouterr().err


# ---------------------------------------------------------------- demo
def test_demo_tracks_the_shipped_real_clip_against_its_annotation(tmp_path, capsys):
    from vos.jobs.demo import DEMO_ANNOTATIONS, DEMO_CLIP

    assert DEMO_CLIP.stat().st_size < 4_000_000  # shipped in the package: a few MB at most
    assert main(["demo", "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert "against the clip's human annotation" in printed
    frames = decode(tmp_path / "a" / "overlay.mp4")
    assert len(frames) == 60 and frames[0].shape == (480, 854, 3)
    masks = sorted((tmp_path / "a" / "masks").glob("*.png"))
    assert [p.name for p in masks] == sorted(p.name for p in DEMO_ANNOTATIONS.glob("*.png"))
    scores = evaluate_sequence(DEMO_ANNOTATIONS, tmp_path / "a" / "masks")
    assert f"J&F {scores[0].summary()['J&F-Mean']:.3f}" in printed


def test_synthetic_demo_runs_the_embedded_model_end_to_end(tmp_path, capsys):
    assert main(["demo", "--synthetic", "--out", str(tmp_path / "a"), "--frames", "8"]) == 0
    printed = capsys.readouterr().out
    assert "J&F " in printed and "against the generator's exact masks" in printed
    assert len(decode(tmp_path / "a" / "overlay.mp4")) == 8
    assert len(list((tmp_path / "a" / "masks").glob("*.png"))) == 8
    # Deterministic: the same seed gives the same video and masks.
    main(["demo", "--synthetic", "--out", str(tmp_path / "b"), "--frames", "8"])
    for name in ("frames/00003.jpg", "masks/00007.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    scores = evaluate_sequence(tmp_path / "a" / "ground_truth", tmp_path / "a" / "masks")
    assert f"J&F {scores[0].summary()['J&F-Mean']:.3f}" in printed