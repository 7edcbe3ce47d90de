"""Outputs get the modes a plain ``open()`` and ``mkdir`` give under the user's umask (0644 and 0755 under
022, 0600 and 0700 under 077): mask PNGs, overlay videos, prompt files and their masks, checkpoints,
evaluation CSV files and plots and segmentation outputs alike (the ONNX export's, which takes minutes to
write, are checked in test_onnx.py)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from tiny import tiny_tracking_model
from videos import moving_shapes, write_jpegs

from streams.files import atomic_write, new_folder
from vos.cli import main
from vos.tracking.prompts import (
    FramePrompt,
    Prompt,
    read_prompt_file,
    write_prompt_file,
)
from vos.weights.checkpoint import save_model


@pytest.fixture(params=[0o022, 0o077], ids=["umask022", "umask077"])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    return save_model(tiny_tracking_model(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    return write_jpegs(moving_shapes(8), tmp_path_factory.mktemp("video") / "frames")


def wrong_modes(root: Path, umask: int) -> list[str]:
    """Every file and folder under ``root`` whose mode is not what ``open()`` / ``mkdir`` give under ``umask``."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        have = stat.S_IMODE(path.lstat().st_mode)
        if have != want:
            wrong.append(f"{path.relative_to(root.parent)}: {have:04o}, expected {want:04o}")
    return wrong


def test_every_output_gets_the_mode_of_a_plain_open(umask, tiny_checkpoint, frames_dir, tmp_path, capsys):
    out = tmp_path / "out"  # every folder below is made by vos, under the umask
    checkpoint = ["--checkpoint", str(tiny_checkpoint)]
    # Tracking from a later frame writes the overlay in parts and joins them.
    assert main(["track", str(frames_dir), *checkpoint, "--out", str(out / "later"), "--masks", "sav",
                 "--frame", "4", "--point", "40,48"]) == 0
    assert main(["track", str(frames_dir), *checkpoint, "--out", str(out / "first"), "--point", "40,48"]) == 0
    mask = np.zeros((96, 160), bool)
    mask[30:60, 20:60] = True
    prompts = [FramePrompt(0, 1, Prompt.make(mask=mask)), FramePrompt(2, 2, Prompt.make(points=[[40, 48]]))]
    write_prompt_file(out / "first" / "prompts.json", prompts)
    assert len(read_prompt_file(out / "first" / "prompts.json")) == 2
    save_model(tiny_tracking_model(), out / "checkpoints" / "model.pt")
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "clip").symlink_to(out / "first" / "masks")
    assert main(["eval", "--dataset", "davis", "--root", str(tmp_path / "gt"), "--predictions",
                 str(tmp_path / "gt"), "--out", str(out / "eval"), "--processes", "1"]) == 0
    assert main(["segment", str(frames_dir / "00000.jpg"), *checkpoint, "--out", str(out / "segment"),
                 "--points-per-side", "4"]) == 0
    capsys.readouterr()
    written = {p.relative_to(out).as_posix() for p in out.rglob("*")}
    assert {"later/overlay.mp4", "later/masks/001/00000.png", "first/masks/00007.png", "first/prompts.json",
            "first/prompts-masks", "checkpoints/model.pt", "eval/global_results-val.csv",
            "segment/00000/masks.json", "segment/00000/overlay.png"} <= written
    assert not [p for p in written if Path(p).name.startswith(".")], "temporary files were left behind"
    assert wrong_modes(out, umask) == []


def test_a_replaced_file_keeps_its_mode_as_open_leaves_it(umask, tmp_path):
    path = atomic_write(tmp_path / "a.txt", lambda tmp: tmp.write_text("one"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o640)
    atomic_write(path, lambda tmp: tmp.write_text("two"))
    assert path.read_text() == "two" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_staging_folders_are_unique_and_get_the_mode_of_mkdir(umask, tmp_path):
    a, b = new_folder(tmp_path, ".stage."), new_folder(tmp_path, ".stage.")
    assert a != b and a.name.startswith(".stage.") and a.is_dir() and b.is_dir()
    assert stat.S_IMODE(a.stat().st_mode) == 0o777 & ~umask
