"""One sink interface (write(frame, result), close()) behind vos track, vos live and vos eval; each frame
decoded once."""
from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny_tracking_model
from videos import moving_shapes

from evaluation.masks import read_index_png
from streams import Frame, FrameArray
from vos.jobs.sinks import (
    MASK_SINKS,
    OverlaySink,
    PaletteMaskSink,
    PerObjectMaskSink,
    Sink,
    Sinks,
    mask_sink,
)
from vos.jobs.track import track_video
from vos.tracking.prompts import FramePrompt, Prompt
from vos.tracking.results import FrameResult

ROOT = Path(__file__).resolve().parents[1]


class _CountingFrames(FrameArray):
    def __init__(self, frames) -> None:
        super().__init__(frames, fps=10)
        self.reads: Counter[int] = Counter()

    def read(self, index: int) -> Frame:
        self.reads[index] += 1
        return super().read(index)


def test_track_decodes_each_frame_once(tmp_path):
    source = _CountingFrames(moving_shapes(6, (64, 96)))
    prompts = [FramePrompt(0, 1, Prompt.make(points=[[30, 30]]))]
    out = track_video(tiny_tracking_model(), source, prompts, tmp_path, progress=False)
    assert out.overlay_frames == 6 and out.mask_frames == list(range(6))
    assert source.reads == Counter({i: 1 for i in range(6)})


def test_track_from_a_later_frame_decodes_each_frame_once_and_writes_the_overlay_in_order(tmp_path, monkeypatch):
    import av

    frames = moving_shapes(12, (64, 96))
    source = _CountingFrames(frames)
    monkeypatch.setattr("vos.jobs.track._HELD_BYTES", 2 * 64 * 96 * 3)  # the backward pass in parts of 2 frames
    prompts = [FramePrompt(5, 1, Prompt.make(points=[[30, 30]]))]
    out = track_video(tiny_tracking_model(), source, prompts, tmp_path, progress=False)
    assert source.reads == Counter({i: 1 for i in range(12)})
    assert out.overlay_frames == 12 and sorted(out.mask_frames) == list(range(12))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks", "overlay.mp4"]  # no part file left
    with av.open(str(tmp_path / "overlay.mp4")) as c:
        drawn = [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]
    assert len(drawn) == 12
    for i, image in enumerate(drawn):  # each overlay frame is its own video frame, in video order
        nearest = min(range(12), key=lambda k: np.abs(image - frames[k]).mean())
        assert nearest == i


def test_joining_videos_of_other_parameters_encodes_them_again(tmp_path):
    from streams.overlay import OverlayVideoWriter, join_videos

    parts = []
    for k, fps in enumerate((10, 20)):
        parts.append(tmp_path / f"p{k}.mp4")
        with OverlayVideoWriter(parts[-1], fps=fps) as writer:
            for _ in range(3):
                writer.write(np.full((16, 24, 3), 100 * k, np.uint8))
    assert join_videos(parts, tmp_path / "joined.mp4") == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["joined.mp4", "p0.mp4", "p1.mp4"]


def _result() -> FrameResult:
    logits = torch.full((2, 1, 16, 24), -5.0)
    logits[0, 0, 2:8, 2:10] = 5.0
    logits[1, 0, 6:12, 8:20] = 4.0
    return FrameResult(0, [1, 2], logits, torch.tensor([3.0, 3.0]))


def test_every_sink_takes_a_frame_and_a_result(tmp_path):
    frame = Frame(0, np.zeros((16, 24, 3), np.uint8))
    sinks: list[Sink] = [OverlaySink(tmp_path / "o.mp4", fps=5), PaletteMaskSink(tmp_path / "p", ["f0"]),
                         PerObjectMaskSink(tmp_path / "s", ["f0"])]
    for sink in sinks:
        sink.write(frame, _result())
        sink.close()
        sink.close()  # twice is safe
        assert sink.written == [0]
    labels = read_index_png(tmp_path / "p" / "f0.png")
    assert labels[7, 9] == 1 and labels[10, 15] == 2  # the overlap goes to the higher logit (object 1)
    assert (read_index_png(tmp_path / "s" / "002" / "f0.png") > 0).sum() == 6 * 12
    assert (tmp_path / "o.mp4").stat().st_size > 0


def test_mask_formats_become_sinks_in_one_place(tmp_path):
    assert isinstance(mask_sink("davis", tmp_path / "d", []), PaletteMaskSink)
    assert isinstance(mask_sink("sav", tmp_path / "s", []), PerObjectMaskSink)
    assert mask_sink("none", tmp_path / "n", []) is None and set(MASK_SINKS) == {"davis", "sav", "none"}
    for module in ("vos/jobs/track.py", "vos/jobs/everything.py", "vos/jobs/live.py", "vos/jobs/dataset_masks.py"):
        tree = ast.parse((ROOT / module).read_text())
        formats = [c.value for n in ast.walk(tree) if isinstance(n, (ast.Compare, ast.Dict))
                   for c in ast.walk(n) if isinstance(c, ast.Constant) and c.value in ("davis", "sav")]
        assert not formats, f"{module} dispatches on mask format names {formats}"
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & {"OverlayVideoWriter", "PaletteMaskWriter", "PerObjectMaskWriter", "write_palette_png"}, module


class _Recording(Sink):
    def __init__(self, log: list, name: str, fail_on_close: bool = False) -> None:
        super().__init__()
        self.log, self.name, self.fail_on_close = log, name, fail_on_close

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.log.append((self.name, "write", frame.index))

    def close(self) -> None:
        self.log.append((self.name, "close"))
        if self.fail_on_close:
            raise OSError(f"{self.name}: No space left on device")


def test_a_set_of_sinks_is_closed_together_however_the_block_ends():
    frame = Frame(3, np.zeros((16, 24, 3), np.uint8))
    log: list = []
    with Sinks(_Recording(log, "a"), None, _Recording(log, "b")) as sinks:
        sinks.write(frame, _result())
    assert log == [("a", "write", 3), ("b", "write", 3), ("a", "close"), ("b", "close")] and sinks.written == [3]
    log.clear()  # a failure in the block: every sink is closed, and the block's error is the one raised
    with pytest.raises(KeyError, match="the run's own error"), Sinks(_Recording(log, "a", fail_on_close=True),
                                                                     _Recording(log, "b")):
        raise KeyError("the run's own error")
    assert log == [("a", "close"), ("b", "close")]
    log.clear()  # a sink failing to close: the others are closed all the same, then its error is raised
    with pytest.raises(OSError, match="a: No space left"), Sinks(_Recording(log, "a", fail_on_close=True),
                                                                 _Recording(log, "b")):
        pass
    assert log[:2] == [("a", "close"), ("b", "close")]


def test_each_decision_of_the_jobs_is_written_once():
    """The fps of a source without one is the overlay writer's; the palette limit is MAX_PALETTE_ID; each job's
    tracker settings come from one function (track_settings, live_settings, davis_settings, sav_settings)."""
    jobs = {p.name: p.read_text() for p in (ROOT / "vos/jobs").glob("*.py")}
    cli = (ROOT / "vos/cli.py").read_text()
    for name, text in {**jobs, "cli.py": cli}.items():
        tree = ast.parse(text)
        numbers = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, (int, float))}
        assert not numbers & {25, 25.0}, name
        if name == "everything.py":
            assert 255 not in numbers and "MAX_PALETTE_ID" in text
        made = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and "TrackerSettings" in ast.unparse(n.func)]
        makers = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                  for n in ast.walk(f) if n in made}
        assert makers <= {"track_settings", "live_settings", "davis_settings", "sav_settings"}, (name, makers)
