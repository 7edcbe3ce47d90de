"""`vos track --manifest`: many videos in one run, the same outputs as `vos track` on each, resumable, failures
reported while the others go on, mistakes named by file and line, and sharded under torchrun (gloo)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from tiny import tiny_tracking_model
from videos import moving_shapes, write_jpegs

import vos.jobs.manifest as manifest_job
from vos.cli import main
from vos.weights.checkpoint import save_model

CLICK = [{"frame": 0, "obj_id": 1, "points": [[40, 48]]}]
LATER_BOX = [{"frame": 3, "obj_id": 4, "box": [90, 20, 140, 70]}]


def _write_mp4(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny checkpoint, two frame folders and a video file, a prompt file and a mask PNG (8 frames each)."""
    root = tmp_path_factory.mktemp("manifest")
    write_jpegs(moving_shapes(8), root / "clips" / "a")
    write_jpegs(moving_shapes(8, seed=1), root / "clips" / "b")
    _write_mp4(root / "clips" / "c.mp4", moving_shapes(8, seed=2))
    mask = np.zeros((96, 160), np.uint8)
    cv2.circle(mask, (32, 38), 14, 255, -1)
    (root / "prompts").mkdir()
    cv2.imwrite(str(root / "prompts" / "disc.png"), mask)
    (root / "prompts" / "b.json").write_text(json.dumps([*LATER_BOX, {"frame": 0, "obj_id": 2, "mask": "disc.png"}]))
    return root, save_model(tiny_tracking_model(), root / "tiny.pt")


def _manifest(path: Path, entries: list) -> Path:
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in entries))
    return path


def _entries(root: Path, out: str) -> list[dict]:
    """Paths relative to a manifest in ``root``: a folder with inline clicks, a folder with a prompt file
    (a later box, tracked both ways, and a mask PNG), a video file with inline clicks and a later box."""
    return [{"video": "clips/a", "prompts": CLICK, "out": f"{out}/a"},
            {"video": "clips/b", "prompts": "prompts/b.json", "out": f"{out}/b"},
            {"video": "clips/c.mp4", "prompts": CLICK + LATER_BOX, "out": f"{out}/c"}]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "done.json"}


def _summary(path: Path) -> dict:
    return {e["line"]: (e["status"], e["reason"]) for e in json.loads(path.read_text())["entries"]}


def test_manifest_writes_what_vos_track_writes_for_each_entry(data, tmp_path, capsys):
    root, checkpoint = data
    manifest = _manifest(root / f"{tmp_path.name}.jsonl", _entries(root, str(tmp_path / "many")))
    assert main(["track", "--manifest", str(manifest), "--checkpoint", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    for i in (1, 2, 3):
        assert f"entry {i} of 3: line {i}" in printed
    assert "3 entries: 3 done, 0 skipped (finished before), 0 failed" in printed
    assert _summary(root / f"{tmp_path.name}.summary.json") == {1: ("done", None), 2: ("done", None), 3: ("done", None)}

    for entry in _entries(root, str(tmp_path / "many")):
        prompts = entry["prompts"]
        if not isinstance(prompts, str):
            prompts = tmp_path / "p.json"
            prompts.write_text(json.dumps(entry["prompts"]))
        alone = tmp_path / "alone" / Path(entry["out"]).name
        assert main(["track", str(root / entry["video"]), "--prompts", str(root / prompts), "--out", str(alone),
                     "--checkpoint", str(checkpoint)]) == 0
        many = Path(entry["out"])
        assert json.loads((many / "done.json").read_text())["frames"] == 8
        files = _files(alone)
        assert "overlay.mp4" in files and len([n for n in files if n.endswith(".png")]) == 8
        assert _files(many) == files, entry  # byte for byte: masks and overlay


def test_a_stopped_run_resumes_skipping_finished_entries_and_redoing_the_unfinished(data, tmp_path, monkeypatch,
                                                                                   capsys):
    root, checkpoint = data
    manifest = _manifest(tmp_path / "m.jsonl", [{**e, "video": str(root / e["video"]),
                                                 "prompts": e["prompts"] if isinstance(e["prompts"], list)
                                                 else str(root / e["prompts"])} for e in _entries(root, "out")])
    track = manifest_job.track_video

    def stopped_in_entry_b(model, video, prompts, out, **options):
        if Path(out).name != "b":
            return track(model, video, prompts, out, **options)
        seen = []

        def on_frame(result):
            seen.append(result)
            if len(seen) == 3:
                raise KeyboardInterrupt  # as Ctrl-C during the fourth frame

        return track(model, video, prompts, out, on_frame=on_frame, **options)

    monkeypatch.setattr(manifest_job, "track_video", stopped_in_entry_b)
    command = ["track", "--manifest", str(manifest), "--checkpoint", str(checkpoint)]
    assert main(command) == 130
    err = capsys.readouterr().err
    assert f"{manifest}:2 ({root / 'clips' / 'b'}): interrupted after 3 of 8 frames" in err
    assert "1 entries finished in this run: run the same command again to resume" in err
    out = tmp_path / "out"
    assert (out / "a" / "done.json").exists() and not (out / "b" / "done.json").exists()
    assert (out / "b" / "masks").is_dir() and not (out / "c").exists()
    finished = {p: p.stat().st_mtime_ns for p in (out / "a").rglob("*")}

    monkeypatch.setattr(manifest_job, "track_video", track)
    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "1 of 3 entries finished before" in printed and "entry 1 of 2: line 2" in printed
    assert "3 entries: 2 done, 1 skipped (finished before), 0 failed" in printed
    assert _summary(tmp_path / "m.summary.json") == {1: ("skipped", None), 2: ("done", None), 3: ("done", None)}
    assert {p: p.stat().st_mtime_ns for p in (out / "a").rglob("*")} == finished
    assert sorted(p.name for p in (out / "b" / "masks").iterdir()) == [f"{i:05d}.png" for i in range(8)]
    assert not (out / "b" / ".vos-entry.json").exists()

    # Nothing left: a third run only skips, and loads no model.
    monkeypatch.setattr("vos.jobs.model.tracking_model", lambda *a, **k: pytest.fail("no entry to run"))
    assert main(command) == 0
    assert "3 entries: 0 done, 3 skipped" in capsys.readouterr().out


def test_a_failing_entry_is_reported_and_the_others_finish(data, tmp_path, capsys):
    root, checkpoint = data
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    manifest = _manifest(tmp_path / "m.jsonl", [
        {"video": str(root / "clips" / "a"), "prompts": CLICK, "out": "a"},
        {"video": "corrupt.mp4", "prompts": CLICK, "out": "corrupt"},
        {"video": str(root / "clips" / "b"), "prompts": [{"frame": 0, "obj_id": 3, "points": [[400, 10]]}],
         "out": "outside"},
        {"video": str(root / "clips" / "a"), "prompts": [{"frame": 12, "obj_id": 1, "points": [[4, 4]]}],
         "out": "late"},
        {"video": str(root / "clips" / "c.mp4"), "prompts": CLICK, "out": "c"},
    ])
    summary = tmp_path / "reports" / "s.json"
    summary.parent.mkdir()
    assert main(["track", "--manifest", str(manifest), "--checkpoint", str(checkpoint), "--summary", str(summary),
                 "--masks", "sav", "--no-video"]) == 1
    printed = capsys.readouterr().out
    assert "5 entries: 2 done, 0 skipped (finished before), 3 failed" in printed
    assert f"failed: line 2 ({tmp_path / 'corrupt.mp4'} -> {tmp_path / 'corrupt'}): " in printed
    results = _summary(summary)
    assert results[1] == results[5] == ("done", None)
    assert "corrupt.mp4" in results[2][1]
    assert "object 3, frame 0: click (400, 10) is outside the 160x96 frame" in results[3][1]
    assert "frame 12" in results[4][1]
    assert len(list((tmp_path / "c" / "masks" / "001").glob("*.png"))) == 8 and not (tmp_path / "c" / "overlay.mp4").exists()


def test_mistakes_in_the_manifest_are_named_by_file_and_line_before_anything_runs(data, tmp_path, capsys, monkeypatch):
    root, checkpoint = data
    (tmp_path / "bad.json").write_text("[{\"frame\": 0,")
    video = str(root / "clips" / "a")
    manifest = _manifest(tmp_path / "m.jsonl", [
        {"video": video, "prompts": CLICK, "out": "fine"},
        '{"video": "x", "prompts": [}',
        {"video": video, "prompts": CLICK},
        "",
        {"video": "missing/clip.mp4", "prompts": CLICK, "out": "o4"},
        {"video": video, "prompts": "nowhere.json", "out": "o5"},
        {"video": video, "prompts": "bad.json", "out": "o6"},
        {"video": video, "prompts": [{"frame": 0, "obj_id": 1, "points": [[1, 2, 3]]}], "out": "o7"},
        {"video": video, "prompts": CLICK, "out": "fine"},
        {"video": video, "prompts": CLICK, "out": "o9", "fps": 3},
        {"video": video, "prompts": [{"frame": 0, "obj_id": 300, "points": [[1, 2]]}], "out": "o10"},
        "[1, 2]",
    ])
    monkeypatch.setattr("vos.jobs.model.tracking_model", lambda *a, **k: pytest.fail("the model is loaded"))
    assert main(["track", "--manifest", str(manifest), "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    m = str(manifest)
    assert "vos track: error: 10 mistake(s), nothing was run" in err
    for expected in (f"{m}:2: not valid JSON", f"{m}:3: missing out",
                     f"{m}:5: video {tmp_path / 'missing' / 'clip.mp4'} does not exist",
                     f"{m}:6: {tmp_path / 'nowhere.json'}: No such file or directory",
                     f"{m}:7: {tmp_path / 'bad.json'}: not valid JSON",
                     f"{m}:8 prompts, prompt 0: points", f"{m}:9: out {tmp_path / 'fine'} is line 1's output folder too",
                     f"{m}:10: unknown keys ['fps']", f"{m}:11: object id 300 cannot be stored in DAVIS palette masks",
                     f"{m}:12: expected an object with video, prompts, out"):
        assert expected in err, expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "m.jsonl"]  # nothing written

    _manifest(manifest, [])
    assert main(["track", "--manifest", str(manifest)]) == 2
    assert f"{m}: no entries" in capsys.readouterr().err
    assert main(["track", "--manifest", str(manifest), "--point", "1,1"]) == 2
    assert "--point/--box/--mask cannot be given with it" in capsys.readouterr().err
    assert main(["track"]) == 2
    assert "needs a video" in capsys.readouterr().err


def test_outputs_of_another_run_are_refused_unless_overwrite(data, tmp_path, capsys):
    root, checkpoint = data
    video = str(root / "clips" / "a")
    assert main(["track", video, "--point", "40,48", "--out", str(tmp_path / "x"), "--checkpoint", str(checkpoint)]) == 0
    manifest = _manifest(tmp_path / "m.jsonl", [{"video": video, "prompts": CLICK, "out": "x"}])
    command = ["track", "--manifest", str(manifest), "--checkpoint", str(checkpoint)]
    assert main(command) == 2
    assert f"{manifest}:1: {tmp_path / 'x'} already holds a previous run's outputs" in capsys.readouterr().err
    assert main([*command, "--overwrite"]) == 0
    assert main(command) == 0  # finished by the manifest run: skipped
    assert "1 skipped" in capsys.readouterr().out
    # The same folder for other prompts, or another mask format, is another entry's: refused.
    _manifest(manifest, [{"video": video, "prompts": LATER_BOX, "out": "x"}])
    assert main([*command, "--masks", "sav"]) == 2
    assert "finished outputs of another entry (its done.json differs in prompts, masks)" in capsys.readouterr().err
    assert main([*command, "--masks", "sav", "--overwrite"]) == 0
    assert (tmp_path / "x" / "masks" / "004").is_dir() and not list((tmp_path / "x" / "masks").glob("*.png"))


@pytest.mark.slow
def test_torchrun_with_two_processes_writes_the_same_outputs(data, tmp_path):
    root, checkpoint = data
    entries = _entries(root, str(tmp_path / "sharded")) + [
        {"video": "clips/b", "prompts": CLICK, "out": str(tmp_path / "sharded" / "d")},
        {"video": "clips/missing-frames", "prompts": CLICK, "out": str(tmp_path / "sharded" / "e")}]
    (root / "clips" / "missing-frames").mkdir(exist_ok=True)  # no frames in it: that entry fails
    single = _manifest(tmp_path / "single.jsonl", [{**e, "out": e["out"].replace("sharded", "single"),
                                                    "video": str(root / e["video"]),
                                                    "prompts": e["prompts"] if isinstance(e["prompts"], list)
                                                    else str(root / e["prompts"])} for e in entries])
    sharded = _manifest(root / f"{tmp_path.name}.jsonl", entries)
    # one thread on both sides: another thread count rounds a few mask pixels differently
    assert main(["track", "--manifest", str(single), "--checkpoint", str(checkpoint), "--threads", "1"]) == 1
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "vos", "track", "--manifest", str(sharded), "--checkpoint", str(checkpoint),
           "--summary", str(tmp_path / "summary.json")]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode != 0, run.stdout  # line 5 failed
    assert "[process 1/2] entry 1 of 3: line 1" in run.stdout and "[process 2/2] entry 1 of 2: line 2" in run.stdout
    assert "5 entries: 4 done, 0 skipped (finished before), 1 failed; " in run.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["processes"] == 2
    assert [e["process"] for e in summary["entries"]] == [0, 1, 0, 1, 0]
    assert [e["status"] for e in summary["entries"]] == ["done"] * 4 + ["failed"]
    for name in "abcd":
        assert _files(tmp_path / "sharded" / name) == _files(tmp_path / "single" / name), name
