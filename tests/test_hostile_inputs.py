"""Careless and hostile input: every case is refused with a message naming the problem, before anything is
written, or stops with one line saying what was kept; nothing written is lost or left corrupt. Full disks
run on a small tmpfs (root, as in CI) and on a writer that fails on purpose; kills on a real subprocess."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from tiny import tiny_tracking_model
from videos import moving_shapes, write_jpegs

import vos
from evaluation.masks import read_index_png
from streams import FrameFolder, NetworkStream, SourceError, redact_url
from streams.files import WriteError, atomic_write
from streams.latest import LatestFrameReader
from streams.overlay import OverlayVideoWriter
from vos.cli import main
from vos.jobs.track import track_video
from vos.tracking.prompts import FramePrompt, Prompt, PromptError
from vos.weights.checkpoint import CheckpointError, save_model

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return save_model(tiny_tracking_model(), tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def model(ckpt):
    return vos.load_model(ckpt)


@pytest.fixture(scope="module")
def frames(tmp_path_factory) -> Path:
    return write_jpegs(moving_shapes(12), tmp_path_factory.mktemp("video") / "frames")


def decoded_frames(path: Path) -> int:
    """Frames in a video file; raises if any part of it is corrupt."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def track(frames: Path, ckpt: Path, out: Path, *extra: str) -> int:
    return main(["track", str(frames), "--checkpoint", str(ckpt), "--out", str(out), *extra])


def message_lines(stderr: str) -> list[str]:
    """What a command printed on stderr, less its progress bar."""
    parts = stderr.replace("\r", "\n").splitlines()
    return [line for line in parts if line.strip() and not line.startswith("tracking")]


def assert_outputs_complete(out: Path) -> tuple[int, int]:
    """Every mask PNG decodes, no temporary file is left; returns (mask files, overlay frames)."""
    masks = sorted((out / "masks").glob("*.png")) if (out / "masks").is_dir() else []
    for path in masks:
        assert read_index_png(path).shape == (96, 160), path
    leftovers = [p for p in out.rglob(".*")]
    assert not leftovers, leftovers
    overlay = out / "overlay.mp4"
    return len(masks), decoded_frames(overlay) if overlay.exists() else 0


# ---------------------------------------------------------------- object ids
@pytest.mark.parametrize("obj", ["0", "256", "-1"])
def test_track_refuses_object_ids_a_palette_mask_cannot_hold(frames, ckpt, tmp_path, capsys, obj):
    assert track(frames, ckpt, tmp_path / "out", f"--obj={obj}", "--point", "40,48") == 2
    err = capsys.readouterr().err
    if obj == "-1":
        assert "object id -1 is negative" in err
    else:
        assert f"object id {obj} cannot be stored in DAVIS palette masks" in err and "--masks sav" in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_json_object_ids_are_checked_with_the_file_named(frames, ckpt, tmp_path, capsys):
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps([{"frame": 0, "obj_id": 0, "points": [[40, 48]]}]))
    assert track(frames, ckpt, tmp_path / "out", "--prompts", str(prompts)) == 2
    assert "object id 0 cannot be stored in DAVIS palette masks" in capsys.readouterr().err
    prompts.write_text(json.dumps([{"frame": 0, "obj_id": "a", "points": [[40, 48]]}]))
    assert track(frames, ckpt, tmp_path / "out", "--prompts", str(prompts)) == 2
    assert "p.json, prompt 0: object id 'a' is not an integer" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("labels", [[1], [None, []], [[1, 2], [1]], "1"])
def test_labels_without_points_are_refused_whatever_they_hold(labels):
    with pytest.raises(PromptError, match="labels were given without points"):
        Prompt.make(labels=labels, box=[0, 0, 4, 4])


def test_api_object_ids_follow_one_rule(model, frames, tmp_path):
    with vos.VideoPredictor(model, frames) as predictor:
        for bad, message in [("a", "object id 'a' is not an integer"), (1.5, "object id 1.5 is not an integer"),
                             (-1, "object id -1 is negative"), (True, "object id True is not an integer")]:
            with pytest.raises(PromptError, match=message):
                predictor.add_points(0, bad, [[40, 48]])
        assert predictor.obj_ids == []
        result = predictor.add_points(0, 0, [[40, 48]])  # SAM 2's ids start anywhere from 0
        with pytest.raises(PromptError, match="object id 0 cannot be stored in DAVIS palette masks"):
            result.label_map()
    with pytest.raises(PromptError, match="object id 300 cannot be stored"):
        track_video(model, frames, [FramePrompt(0, 300, Prompt.make(points=[[40, 48]]))], tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()
    out = track_video(model, frames, [FramePrompt(0, 0, Prompt.make(points=[[40, 48]]))], tmp_path / "s",
                      masks="sav", overlay=False, progress=False)
    assert len(list((out.masks / "000").glob("*.png"))) == 12  # per-object files hold any id


# ---------------------------------------------------------------- masks and weights that would track nothing
def test_float_masks_must_be_zero_or_one(model, frames):
    with vos.VideoPredictor(model, frames) as predictor:
        with pytest.raises(PromptError, match=r"object 1, frame 0: mask holds values other than 0 and 1 \(e.g. 0.3\)"):
            predictor.add_mask(0, 1, np.full((96, 160), 0.3, np.float32))
        with pytest.raises(PromptError, match="NaN"):
            predictor.add_mask(0, 1, np.full((96, 160), np.nan))
        mask = np.zeros((96, 160), np.float32)
        mask[20:40, 20:40] = 1.0
        assert predictor.add_mask(0, 1, mask).obj_ids == [1]


def test_a_checkpoint_with_a_nan_weight_is_refused(tmp_path, capsys):
    model = tiny_tracking_model()
    with torch.no_grad():
        model.sam_mask_decoder.iou_token.weight[0, 0] = float("nan")
    path = save_model(model, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match=r"nan.pt: weight 'sam_mask_decoder.iou_token.weight' holds 1 NaN"):
        vos.load_model(path)
    assert main(["info", str(path)]) == 2
    assert "holds 1 NaN or infinite value(s)" in capsys.readouterr().err


# ---------------------------------------------------------------- earlier runs
def test_a_second_run_into_the_same_folder_is_refused_or_replaces_cleanly(frames, ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    assert track(frames, ckpt, out, "--point", "40,48") == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    short = write_jpegs(moving_shapes(3), tmp_path / "short")
    capsys.readouterr()
    assert track(short, ckpt, out, "--point", "40,48") == 2
    err = capsys.readouterr().err
    assert "already holds a previous run's outputs (overlay.mp4, masks/ with 12 PNG files)" in err
    assert "--overwrite" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # untouched
    assert track(short, ckpt, out, "--point", "40,48", "--overwrite") == 0
    assert f"replaced the previous run's outputs in {out}" in capsys.readouterr().out
    assert assert_outputs_complete(out) == (3, 3)


def test_out_naming_a_file_and_a_missing_gpu_are_one_line_errors(frames, ckpt, tmp_path, capsys):
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    assert track(frames, ckpt, existing, "--point", "40,48") == 2
    assert "notes.txt is a file, not a folder" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
    if torch.cuda.is_available():
        return
    assert track(frames, ckpt, tmp_path / "gpu", "--point", "40,48", "--device", "cuda") == 2
    (err,) = message_lines(capsys.readouterr().err)
    assert "device 'cuda': PyTorch sees no CUDA GPU" in err
    with pytest.raises(ValueError, match="no CUDA GPU"):
        vos.load_model(ckpt, device="cuda")
    assert not (tmp_path / "gpu").exists()


# ---------------------------------------------------------------- credentials
@pytest.mark.parametrize("url, hidden", [
    ("rtsp://user:se@cret@127.0.0.1:8554/x", ["se@cret", "cret", "user"]),
    ("rtsp://127.0.0.1/x?user=admin&password=secret", ["admin", "secret"]),
    ("rtsp://admin:ab/cd@10.0.0.1/stream", ["ab/cd", "admin"]),
    ("http://cam.local/live?channel=1&Token=t0k3n#frag", ["t0k3n"]),
    ("rtsp://a:b@h/p;pwd=x1&api_key=k2", ["a:b", "x1", "k2"]),
    ("error in 'rtsp://u:p@h/p' and 'rtmp://v:q@g/s?auth=zz'", ["u:p", "v:q", "zz"]),
])
def test_every_credential_in_a_url_is_redacted(url, hidden):
    redacted = redact_url(url)
    for secret in hidden:
        assert secret not in redacted, redacted
    assert "***" in redacted


def test_urls_keep_what_is_not_a_credential():
    assert redact_url("rtsp://admin:hunter2@10.0.0.5:554/stream1") == "rtsp://***@10.0.0.5:554/stream1"
    assert redact_url("rtsp://10.0.0.5/stream?channel=2") == "rtsp://10.0.0.5/stream?channel=2"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_vos_live_never_prints_a_password(capsys):
    url = f"rtsp://user:se@cret@127.0.0.1:{_closed_port()}/x?user=admin&password=secret"
    assert main(["live", url, "--point", "10,10", "--max-reconnects", "0"]) == 2
    printed = "".join(capsys.readouterr())
    assert "127.0.0.1" in printed
    for secret in ("se@cret", "cret", "secret", "admin"):
        assert secret not in printed


def test_reader_messages_are_redacted():
    def frames():
        raise RuntimeError("cannot open 'rtsp://viewer:pa55@cam/x?token=abc'")
        yield  # a generator that fails on first use

    events = []
    reader = LatestFrameReader(frames, "cam", backoff=None, on_event=events.append)
    with pytest.raises(SourceError) as err:
        reader.get(timeout=5)
    reader.close()
    assert "pa55" not in str(err.value) and "abc" not in str(err.value) and "***" in str(err.value)


def test_a_silent_server_is_reported_as_silent():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    try:
        with pytest.raises(SourceError, match="no answer from the server within the 1 s open timeout"):
            NetworkStream(f"rtsp://127.0.0.1:{server.getsockname()[1]}/x", open_timeout=1, backoff=None)
    finally:
        server.close()


# ---------------------------------------------------------------- checkpoints that are not plain weights
class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_with_code_is_named_for_what_it_is(tmp_path, capsys):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"model": _Payload(str(marker))}, path)
    with pytest.raises(CheckpointError) as err:
        vos.load_model(path)
    message = str(err.value)
    assert "evil.pt is not a plain weights file" in message and "system" in message
    assert "weights_only=False" not in message and "truncated" not in message
    assert main(["info", str(path)]) == 2
    printed = capsys.readouterr().err
    assert "not a plain weights file" in printed and "weights_only=False" not in printed
    assert not marker.exists()


def test_the_embedded_weights_load_bare_or_wrapped_and_the_config_can_be_named(tmp_path, capsys):
    state = vos.load_model().state_dict()
    torch.save(state, tmp_path / "bare.pt")
    torch.save({"model": state}, tmp_path / "wrapped.pt")
    for name in ("bare.pt", "wrapped.pt"):
        assert vos.load_model(tmp_path / name).config.name == "vos_small"
        assert main(["info", str(tmp_path / name)]) == 0
        assert "config:      vos_small" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "bare.pt"), "--config", "vos_small"]) == 0
    assert main(["info", str(tmp_path / "bare.pt"), "--config", "sam2.1_hiera_tiny"]) == 2
    assert "does not match config 'sam2.1_hiera_tiny'" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "bare.pt"), "--config", "nope"]) == 2
    assert "unknown config 'nope'" in capsys.readouterr().err


# ---------------------------------------------------------------- prompts that make no sense
@pytest.mark.parametrize("box, message", [
    ("60,40,20,80", r"box \(60, 40, 20, 80\) has x2 < x1: give the top-left corner first"),
    ("20,40,20,80", r"box \(20, 40, 20, 80\) has zero area"),
    ("200,10,300,50", r"box \(200, 10, 300, 50\) lies entirely outside the 160x96 frame"),
])
def test_boxes_that_cannot_be_meant(frames, ckpt, tmp_path, capsys, box, message):
    assert track(frames, ckpt, tmp_path / "out", "--obj", "3", "--box", box) == 2
    import re

    assert re.search("object 3, frame 0: " + message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()  # a prompt error leaves no folder behind


def test_api_prompts_of_the_wrong_kind_are_named(model, frames):
    with vos.VideoPredictor(model, frames) as predictor:
        empty = predictor.result(0)  # no objects yet: an empty result, not an error from deep inside
        assert empty.obj_ids == [] and empty.label_map().shape == (96, 160) and not empty.label_map().any()
        cases = [
            (lambda: predictor.add_mask(0, 1, np.zeros((96, 160, 3), bool)),
             r"object 1, frame 0: mask must be \(H, W\), got shape \(96, 160, 3\)"),
            (lambda: predictor.add_mask(0, 1, "mask.png"), "got the path 'mask.png'; read a PNG with"),
            (lambda: predictor.add_points(0, 1, [[40, 48, 1]]), r"shape \(1, 3\) \(click labels go in labels="),
            (lambda: predictor.add_points(0, 1, "40,48"), "points must be numbers, got the string '40,48'"),
            (lambda: predictor.add_points(0, 1, [[40, 48]], labels=[0.5]), "click labels must be 1 .* got \\[0.5\\]"),
            (lambda: predictor.add_points(1.5, 1, [[40, 48]]), "frame index 1.5 is not an integer"),
            (lambda: predictor.add_points(12, 1, [[40, 48]]), "frame 12 does not exist: the video has 12 frames"),
            (lambda: predictor.add_points(0, 1, box=[10, 10, 5, 50]), "has x2 < x1"),
        ]
        for call, message in cases:
            with pytest.raises(PromptError, match=message):
                call()
        assert predictor.obj_ids == []


def test_a_truncated_jpeg_is_named_not_tracked_grey(frames, ckpt, tmp_path, capsys):
    folder = tmp_path / "cut"
    folder.mkdir()
    for p in frames.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    data = (folder / "00003.jpg").read_bytes()
    (folder / "00003.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"00003.jpg: frame 3 is a truncated JPEG"):
        FrameFolder(folder).read(3)
    # Prompted on frame 4: the forward pass (4-11) is kept, the backward pass stops at frame 3 and says so.
    assert track(folder, ckpt, tmp_path / "out", "--frame", "4", "--point", "40,48") == 2
    (err,) = message_lines(capsys.readouterr().err)
    assert "cut/00003.jpg: frame 3 is a truncated JPEG" in err and "; kept masks of frames 4-11 in" in err
    assert "no overlay.mp4 (the overlay is written once the backward pass is done)" in err
    assert assert_outputs_complete(tmp_path / "out") == (8, 0)


# ---------------------------------------------------------------- full disks
def _mount_tmpfs(where: Path, kilobytes: int) -> None:
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); the failing-writer tests cover full disks")


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, 48)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="module")
def long_frames(tmp_path_factory) -> Path:
    rng = np.random.default_rng(1)
    noisy = [np.clip(f.astype(int) + rng.integers(-40, 40, f.shape), 0, 255).astype(np.uint8) for f in moving_shapes(40)]
    return write_jpegs(noisy, tmp_path_factory.mktemp("long") / "frames")


@pytest.mark.parametrize("video", [True, False], ids=["overlay", "no-video"])
def test_a_full_disk_stops_with_one_line_and_complete_files(long_frames, ckpt, small_disk, capsys, video):
    out = small_disk / "out"
    args = ["--point", "40,48"] + ([] if video else ["--no-video"])
    assert track(long_frames, ckpt, out, *args) == 2
    (err,) = message_lines(capsys.readouterr().err)
    assert "No space left on device" in err and "; kept " in err
    masks, overlay_frames = assert_outputs_complete(out)
    assert 0 < masks < 40
    assert f"masks of frames 0-{masks - 1} in" in err
    if video:
        assert f"overlay.mp4 with frames 0-{overlay_frames - 1}" in err and overlay_frames >= masks


def test_a_writer_that_fails_on_purpose_loses_nothing(long_frames, ckpt, tmp_path, monkeypatch, capsys):
    """The full disk without a tmpfs: from the 6th mask file on, every PNG write fails part way."""
    real_save = Image.Image.save
    calls = []

    def failing_save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) <= 5:
            return real_save(self, fp, *args, **kwargs)
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    out = tmp_path / "out"
    assert track(long_frames, ckpt, out, "--point", "40,48") == 2
    (err,) = message_lines(capsys.readouterr().err)
    assert "masks/00005.png: cannot be written (No space left on device); kept masks of frames 0-4" in err
    masks, overlay_frames = assert_outputs_complete(out)
    assert masks == 5 and overlay_frames >= 5 and f"overlay.mp4 with frames 0-{overlay_frames - 1}" in err


def test_atomic_write_keeps_the_old_file_and_names_the_new_one(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError, match="a.csv: cannot be written \\(No space left on device\\)") as err:
        atomic_write(path, fail)
    assert err.value.errno == 28 and path.read_text() == "old" and sorted(tmp_path.iterdir()) == [path]


def test_an_overlay_that_cannot_even_start_is_removed(tmp_path):
    link = tmp_path / "o.mp4"
    link.symlink_to("/dev/full")  # every write fails with ENOSPC
    writer = OverlayVideoWriter(link, fps=5)
    with pytest.raises(WriteError, match="o.mp4: cannot be written at frame 0 .*the file was removed"):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    assert not link.exists() and not link.is_symlink()
    unused = OverlayVideoWriter(tmp_path / "unused.mp4")
    unused.close()
    assert not (tmp_path / "unused.mp4").exists()  # no empty video left behind


# ---------------------------------------------------------------- kills
def _start_track(frames: Path, ckpt: Path, out: Path) -> subprocess.Popen:
    # SIGINT back to its default, so that Python turns it into KeyboardInterrupt even when the test runs
    # in a background job (whose SIGINT is ignored, and inherited so).
    return subprocess.Popen(
        [sys.executable, "-m", "vos", "track", str(frames), "--checkpoint", str(ckpt), "--out", str(out),
         "--point", "40,48"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.fixture(scope="module")
def very_long_frames(tmp_path_factory) -> Path:
    return write_jpegs(moving_shapes(150), tmp_path_factory.mktemp("kill") / "frames")


def test_sigkill_leaves_an_overlay_with_every_masked_frame(very_long_frames, ckpt, tmp_path):
    out = tmp_path / "out"
    process = _start_track(very_long_frames, ckpt, out)
    _wait_for(out / "masks" / "00002.png", process)
    process.kill()
    process.communicate()
    masks = sorted((out / "masks").glob("*.png"))
    assert 3 <= len(masks) < 150
    for path in masks:
        assert read_index_png(path).shape == (96, 160)
    assert len(masks) <= decoded_frames(out / "overlay.mp4") <= len(masks) + 1
    # Resuming is running again with --overwrite (tested above); without it the partial run is kept as it is.
    assert main(["track", str(very_long_frames), "--checkpoint", str(ckpt), "--out", str(out), "--point", "40,48"]) == 2
    assert sorted((out / "masks").glob("*.png")) == masks


def test_ctrl_c_prints_one_line_saying_what_was_kept(very_long_frames, ckpt, tmp_path):
    out = tmp_path / "out"
    process = _start_track(very_long_frames, ckpt, out)
    _wait_for(out / "masks" / "00002.png", process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    lines = message_lines(err)
    assert len(lines) == 1 and "Traceback" not in err, err
    masks, overlay_frames = assert_outputs_complete(out)
    assert lines[0].startswith("vos track: interrupted after ")
    assert f"kept masks of frames 0-{masks - 1} in {out / 'masks'}, {out / 'overlay.mp4'} with frames 0-{masks - 1}" \
        in lines[0]
    assert overlay_frames == masks
