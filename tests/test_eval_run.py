"""`vos eval` running a model: masks written per frame, resumable, and sharded under torchrun (gloo)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from oracle_free import random_state_dict, set_presence
from PIL import Image
from tiny import tiny_config

from vos import save_model
from vos.cli import main
from vos.model.sam2 import SAM2Model

SEQUENCES = ["bear", "car", "dog"]
SIZE = (48, 80)
PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)


def _sequence(root: Path, name: str, seed: int, frames: int = 6) -> None:
    rng = np.random.default_rng(seed)
    h, w = SIZE
    background = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 2)
    images, annotations = root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name
    images.mkdir(parents=True)
    annotations.mkdir(parents=True)
    for t in range(frames):
        img, labels = background.copy(), np.zeros(SIZE, np.uint8)
        centre = (int(15 + 3 * t + seed), int(18 + t))
        cv2.circle(img, centre, 8, (230, 40, 40), -1)
        cv2.circle(labels, centre, 8, 1, -1)
        x0 = int(55 - 2 * t)
        cv2.rectangle(img, (x0, 28), (x0 + 10, 38), (40, 200, 60), -1)
        cv2.rectangle(labels, (x0, 28), (x0 + 10, 38), 2, -1)
        cv2.imwrite(str(images / f"{t:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        png = Image.fromarray(labels, mode="P")
        png.putpalette(PALETTE)
        png.save(annotations / f"{t:05d}.png")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    for i, name in enumerate(SEQUENCES):
        _sequence(root, name, seed=i)
    model = SAM2Model(tiny_config(image_size=64)).eval()
    model.load_state_dict(random_state_dict(model.state_dict(), seed=5))
    set_presence(model, 2.0)
    checkpoint = root / "tiny.pt"
    save_model(model, checkpoint)
    return root, checkpoint


def _eval(root, checkpoint, out, *extra):
    return ["eval", "--dataset", "davis", "--root", str(root), "--checkpoint", str(checkpoint), "--out", str(out),
            "--processes", "1", *extra]


def test_eval_runs_the_model_writes_masks_and_resumes(dataset, tmp_path, capsys):
    root, checkpoint = dataset
    out = tmp_path / "run"
    assert main(_eval(root, checkpoint, out)) == 0
    printed = capsys.readouterr().out
    assert "GLOBAL" in printed
    for name in SEQUENCES:
        masks = sorted((out / "masks" / name).glob("*.png"))
        assert [m.stem for m in masks] == [f"{t:05d}" for t in range(6)]
        with Image.open(masks[0]) as first:
            assert first.mode == "P" and first.getpalette()[:9] == PALETTE[:9]
            assert set(np.unique(np.array(first))) <= {0, 1, 2}
    csv = (out / "global_results-val.csv").read_text()
    assert (out / "per-sequence_results-val.csv").exists() and (out / "jf_per_object.png").exists()

    # Resume: finished sequences are kept as they are, a missing one is computed again.
    kept = {p: p.stat().st_mtime_ns for p in (out / "masks" / "bear").iterdir()}
    for p in (out / "masks" / "car").iterdir():
        p.unlink()
    (out / "masks" / "dog" / "00005.png").unlink()  # an interrupted sequence is redone
    assert main(_eval(root, checkpoint, out)) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "masks" / "bear").iterdir()} == kept
    assert len(list((out / "masks" / "car").glob("*.png"))) == 6
    assert (out / "masks" / "dog" / "00005.png").exists()
    assert (out / "global_results-val.csv").read_text() == csv


def test_eval_without_a_checkpoint_runs_the_embedded_model(dataset, tmp_path, capsys):
    root, _ = dataset
    assert main(["eval", "--dataset", "davis", "--root", str(root), "--out", str(tmp_path / "run"), "--processes", "1"]) == 0
    assert "GLOBAL" in capsys.readouterr().out
    assert len(list((tmp_path / "run" / "masks" / "car").glob("*.png"))) == 6


@pytest.mark.slow
def test_torchrun_with_two_processes_gives_the_same_scores(dataset, tmp_path):
    root, checkpoint = dataset
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert main(_eval(root, checkpoint, single)) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vos", *_eval(root, checkpoint, sharded, "--device", "cpu")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (sharded / name).read_text() == (single / name).read_text()
    for name in SEQUENCES:
        for p in (single / "masks" / name).iterdir():
            assert np.array_equal(np.array(Image.open(p)), np.array(Image.open(sharded / "masks" / name / p.name)))
