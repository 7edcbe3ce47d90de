"""Objects that appear later (YouTube-VOS-style sparse annotations): each is tracked from its first
annotated frame, as SAM 2's per-object evaluation (--track_object_appearing_later_in_video) does."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import tiny_tracking_model
from videos import write_jpegs

from evaluation.masks import read_index_png
from streams import FrameFolder
from streams.masks import write_palette_png
from vos.cli import main
from vos.jobs.dataset_masks import predict_davis
from vos.model.transforms import non_overlapping
from vos.tracking.core import TrackerSettings
from vos.tracking.video_predictor import VideoPredictor
from vos.train.synthetic import generate_video
from vos.weights.checkpoint import save_model

LATER = 4


@pytest.fixture(scope="module")
def model():
    return tiny_tracking_model()


@pytest.fixture(scope="module")
def ytvos_root(tmp_path_factory):
    """JPEGImages/<seq>/*.jpg and Annotations/<seq>/*.png on every frame, object 2 first seen on frame 4."""
    root = tmp_path_factory.mktemp("ytvos")
    video = generate_video(11, num_frames=10, size=(64, 96), num_objects=2, num_distractors=0)
    write_jpegs(list(video.frames), root / "JPEGImages" / "seq")
    ann = root / "Annotations" / "seq"
    ann.mkdir(parents=True)
    for t, labels in enumerate(video.masks):
        write_palette_png(ann / f"{t:05d}.png", np.where((labels == 2) & (t < LATER), 0, labels).astype(np.uint8))
    return root


def _separately(model, root) -> list[np.ndarray]:
    """The official recipe: one state per object, propagated from its first mask, merged with -1024 fill
    and non-overlap, then thresholded."""
    frames = FrameFolder(root / "JPEGImages" / "seq")
    merged = torch.full((2, len(frames), 1, *frames.size), -1024.0)
    for row, (obj_id, png) in enumerate([(1, "00000.png"), (2, f"{LATER:05d}.png")]):
        predictor = VideoPredictor(model, frames, TrackerSettings(batch_objects=False))
        mask = read_index_png(root / "Annotations" / "seq" / png) == obj_id
        start = int(png[:5])
        predictor.add_mask(start, obj_id, mask)
        for result in predictor.propagate(start):
            merged[row, result.frame_idx] = result.logits[0]
    out = []
    for t in range(len(frames)):
        logits = non_overlapping(merged[:, t])
        labels = np.zeros(frames.size, np.uint8)
        for row in (1, 0):  # lowest id painted last
            labels[(logits[row, 0] > 0).numpy()] = row + 1
        out.append(labels)
    return out


def test_later_objects_are_tracked_from_their_first_mask_as_official(model, ytvos_root, tmp_path):
    settings = TrackerSettings.vos_inference(keep_history=False, batch_objects=False)
    predict_davis(model, ytvos_root, tmp_path, ["seq"], settings, progress=False, later_objects=True)
    ours = [read_index_png(tmp_path / "seq" / f"{t:05d}.png") for t in range(10)]
    for t in range(LATER):
        assert not (ours[t] == 2).any(), f"object 2 predicted on frame {t}, before it appears"
    assert (ours[LATER] == 2).any()
    for t, (a, b) in enumerate(zip(ours, _separately(model, ytvos_root))):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {t}")


def test_without_the_flag_only_first_frame_objects_are_tracked(model, ytvos_root, tmp_path):
    predict_davis(model, ytvos_root, tmp_path, ["seq"], progress=False)
    labels = np.stack([read_index_png(tmp_path / "seq" / f"{t:05d}.png") for t in range(10)])
    assert not (labels == 2).any()


def test_vos_eval_track_later_objects_scores_them_with_the_sav_evaluator(model, ytvos_root, tmp_path, capsys):
    checkpoint = save_model(model, tmp_path / "tiny.pt")
    run = tmp_path / "run"
    assert main(["eval", "--dataset", "davis", "--root", str(ytvos_root), "--checkpoint", str(checkpoint),
                 "--out", str(run), "--track-later-objects", "--processes", "1"]) == 2
    # The DAVIS protocol takes objects from the first frame, so it refuses the later object by name ...
    assert "prediction holds object id 2" in capsys.readouterr().err
    # ... while the SA-V evaluator, like the official one, scores DAVIS-layout videos object by object.
    assert main(["eval", "--dataset", "sav", "--root", str(ytvos_root / "Annotations"),
                 "--predictions", str(run / "masks"), "--processes", "1"]) == 0
    printed = capsys.readouterr().out
    assert "seq_001" in printed and "seq_002" in printed


def _sav_layout(root, video):
    """SA-V layout: JPEGImages_24fps/<v>/*.jpg, Annotations_6fps/<v>/<obj:03d>/<every 2nd frame>.png."""
    write_jpegs(list(video.frames), root / "JPEGImages_24fps" / "v")
    for obj_id in (1, 2):
        folder = root / "Annotations_6fps" / "v" / f"{obj_id:03d}"
        folder.mkdir(parents=True)
        for t in range(0, len(video.frames), 2):
            Image.fromarray(np.where(video.masks[t] == obj_id, 255, 0).astype(np.uint8)).save(folder / f"{t:05d}.png")


def test_vos_eval_runs_the_model_on_sav(model, tmp_path, capsys):
    _sav_layout(tmp_path, generate_video(5, num_frames=9, size=(64, 96), num_objects=2, num_distractors=0))
    checkpoint = save_model(model, tmp_path / "tiny.pt")
    args = ["eval", "--dataset", "sav", "--root", str(tmp_path / "Annotations_6fps"), "--checkpoint", str(checkpoint),
            "--out", str(tmp_path / "run"), "--processes", "1"]
    assert main(args) == 2
    assert "needs --images" in capsys.readouterr().err
    assert main(args + ["--images", str(tmp_path / "JPEGImages_24fps")]) == 0
    assert "v_001" in capsys.readouterr().out
    masks = tmp_path / "run" / "masks" / "v"
    assert sorted(p.name for p in (masks / "002").iterdir()) == [f"{t:05d}.png" for t in range(9)]
    assert set(np.unique(np.array(Image.open(masks / "001" / "00004.png")))) <= {0, 255}
    assert (tmp_path / "run" / "results.csv").exists()
