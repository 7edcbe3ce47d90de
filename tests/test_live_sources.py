"""Several live sources in one process (issue 33): MultiStreamTracker, run_live_sources and
``vos live --sources``. Sources of different sizes and rates, prompts per source, one that dies or sends
garbage while the others go on, and outputs equal to single-source runs of the same frames."""
from __future__ import annotations

import json
import threading
import time

import av
import numpy as np
import pytest
import torch
from test_live_streams import rtsp  # noqa: F401 - the loopback RTSP server fixture
from tiny import tiny_tracking_model
from videos import moving_shapes

from streams import Backoff, FrameArray, PacedVideo, SourceError, open_live
from streams.latest import LatestFrameReader, LiveSource
from vos.cli import main
from vos.jobs.live import run_live
from vos.jobs.live_sources import SourcesError, read_sources_file, run_live_sources
from vos.tracking.live_tracker import FrameSizeError, LiveTracker, MultiStreamTracker
from vos.tracking.prompts import FramePrompt, Prompt
from vos.weights.checkpoint import save_model


@pytest.fixture(scope="module")
def model():
    return tiny_tracking_model()


# Three streams of different sizes and lengths, each with its own objects.
CLIPS = {"door": ((48, 80), 7, 0), "yard": ((64, 64), 5, 1), "gate": ((40, 56), 6, 2)}
PROMPTS = {
    "door": {1: Prompt.make(points=[[20, 20]]), 2: Prompt.make(box=[40, 20, 70, 44])},
    "yard": {1: Prompt.make(points=[[30, 30]])},
    "gate": {3: Prompt.make(points=[[10, 12], [30, 30]], labels=[1, 0])},
}


def _clips():
    return {k: moving_shapes(n, size, seed=seed) for k, (size, n, seed) in CLIPS.items()}


def _single(model, frames, prompts):
    tracker = LiveTracker(model)
    return [tracker.step(f, prompts if i == 0 else None) for i, f in enumerate(frames)]


@pytest.mark.parametrize("batch_frames", [False, True])
def test_each_stream_gets_what_a_tracker_of_its_own_would(model, batch_frames):
    """Streams that skip steps (a stalled source) and end at different times; each stream's results are a
    LiveTracker's on the same frames: bit for bit unbatched, to the image encoder's rounding batched."""
    clips = _clips()
    tracker = MultiStreamTracker(model, batch_frames=batch_frames)
    taken = {k: 0 for k in clips}
    got = {k: [] for k in clips}
    for step in range(12):
        frames = {k: clips[k][taken[k]] for k in clips
                  if taken[k] < len(clips[k]) and not (k == "yard" and step % 3 == 1)}  # the yard stalls now and then
        if not frames:
            break
        results = tracker.step(frames, {k: PROMPTS[k] for k in frames if taken[k] == 0})
        assert set(results) == set(frames)
        for k in frames:
            got[k].append(results[k])
            taken[k] += 1
    for k, frames in clips.items():
        expected = _single(model, frames, PROMPTS[k])
        assert len(got[k]) == len(expected) == len(frames)
        for ours, theirs in zip(got[k], expected):
            assert ours.obj_ids == theirs.obj_ids == sorted(PROMPTS[k]) and ours.frame_idx == theirs.frame_idx
            if batch_frames:
                assert np.array_equal(ours.masks, theirs.masks)
                torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=0)
            else:
                assert torch.equal(ours.logits, theirs.logits) and torch.equal(ours.object_scores, theirs.object_scores)
    assert tracker.memory_bytes() > 0


def test_each_part_of_the_model_runs_once_per_step_for_every_stream(model, monkeypatch):
    """The image encoder takes every stream's frame in one call; once the streams' memories have one shape,
    memory attention, the decoder and the memory encoder take every stream's tracked objects in one call."""
    calls = {name: [] for name in ("encode_image", "condition_on_memories", "predict_masks", "encode_memory")}
    for name, batch in calls.items():
        original = getattr(type(model), name)
        monkeypatch.setattr(type(model), name, lambda self, x, *a, _o=original, _b=batch, **k: _b.append(x.shape[0]) or _o(self, x, *a, **k))
    clips = _clips()
    tracker = MultiStreamTracker(model)
    tracker.step({k: c[0] for k, c in clips.items()}, PROMPTS)
    assert calls["encode_image"] == [3] and calls["condition_on_memories"] == []  # prompts are read without memory
    for calls_of in calls.values():
        calls_of.clear()
    tracker.step({"door": clips["door"][1], "gate": clips["gate"][1]})  # 2 objects at the door, 1 at the gate
    assert calls == {"encode_image": [2], "condition_on_memories": [3], "predict_masks": [3], "encode_memory": [3]}


def test_a_bad_frame_or_prompt_names_its_stream_and_changes_nothing(model):
    clips = _clips()
    tracker = MultiStreamTracker(model)
    tracker.step({k: c[0] for k, c in clips.items()}, PROMPTS)
    before = {k: t.frame_index for k, t in tracker.streams.items()}
    with pytest.raises(FrameSizeError, match="stream 'yard', frame 1 is 80x48, the stream is 64x64"):
        tracker.step({"door": clips["door"][1], "yard": clips["door"][1]})
    with pytest.raises(FrameSizeError, match="stream 'new', frame 0: expected .H, W, 3. uint8 RGB"):
        tracker.step({"door": clips["door"][1], "new": np.zeros((8, 8), np.uint8)})
    with pytest.raises(Exception, match="stream 'gate', .*outside"):
        tracker.step({"gate": clips["gate"][1]}, {"gate": {4: Prompt.make(points=[[500, 5]])}})
    assert {k: t.frame_index for k, t in tracker.streams.items()} == before and "new" not in tracker.streams
    tracker.remove("yard")
    assert list(tracker.streams) == ["door", "gate"]
    with pytest.raises(KeyError, match="stream 'yard' is not tracked"):
        tracker["yard"]


# ---------------------------------------------------------------- the job
def _decoded(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _first_frame_prompts(prompts):
    return [FramePrompt(0, obj_id, p) for obj_id, p in prompts.items()]


@pytest.mark.parametrize("workers", [1, 2])
def test_sources_write_what_single_source_runs_write(model, tmp_path, workers):
    """Frames taken in the same order (file-like sources give every frame, in order): each source's overlay
    video is the one vos live writes for it alone, frame for frame, whether the sources are stepped as one
    group or in two side by side (door; yard and gate)."""
    clips = _clips()
    rates = {"door": 25.0, "yard": 10.0, "gate": None}
    sources = [(k, FrameArray(clips[k], fps=rates[k]), _first_frame_prompts(PROMPTS[k]), tmp_path / f"{k}.mp4")
               for k in clips]
    lines = []
    report = run_live_sources(model, sources, log=lines.append, batch_frames=False, workers=workers)
    assert [r.name for r in report.sources] == list(clips) and not report.failed
    assert [r.frames for r in report.sources] == [len(c) for c in clips.values()] and report.frames == 18
    # every source of a group each step of the group, until each ran out
    assert report.steps == (7 if workers == 1 else 7 + 6) and report.batch == 18
    for k, frames in clips.items():
        alone = tmp_path / f"{k}-alone.mp4"
        run_live(model, FrameArray(frames, fps=rates[k]), _first_frame_prompts(PROMPTS[k]), alone, show=False,
                 log=lambda m: None)
        ours, theirs = _decoded(tmp_path / f"{k}.mp4"), _decoded(alone)
        assert len(ours) == len(theirs) == len(frames)
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_groups_of_sources_compute_side_by_side_on_one_thread_each(model, monkeypatch):
    """Two groups: each steps in a worker thread of its own on one PyTorch thread, and the process's thread
    count (the caller's, and what threads started later get) is as it was afterwards."""
    clips = _clips()
    seen = []
    step = MultiStreamTracker.step

    def recording(self, frames, prompts=None):
        seen.append((threading.current_thread().name, torch.get_num_threads(), tuple(frames)))
        return step(self, frames, prompts)

    monkeypatch.setattr(MultiStreamTracker, "step", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sources = [(k, FrameArray(clips[k]), _first_frame_prompts(PROMPTS[k]), None) for k in clips]
        report = run_live_sources(model, sources, log=lambda m: None)
        assert torch.get_num_threads() == 2
        later = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert later == [2]
    finally:
        torch.set_num_threads(before)
    assert [r.frames for r in report.sources] == [7, 5, 6]
    threads = {name for name, _, _ in seen}
    assert len(threads) == 2 and all(name.startswith("vos-sources") for name in threads)
    assert {n for _, n, _ in seen} == {1}
    assert {keys for _, _, keys in seen} == {(0,), (1, 2), (2,)}  # door; yard and gate, then gate alone


class _Dying(FrameArray):
    """A source whose frames stop with a decoder error after ``alive`` frames."""

    def __init__(self, frames, alive):
        super().__init__(frames)
        self.alive = alive

    def __iter__(self):
        for i in range(self.alive):
            yield self.read(i)
        raise SourceError("rtsp://***@cam-2/live: InvalidDataError: corrupt packet")


def test_a_source_that_dies_mid_run_stops_alone(model, tmp_path):
    clips = _clips()
    sources = [("door", FrameArray(clips["door"]), _first_frame_prompts(PROMPTS["door"]), tmp_path / "door.mp4"),
               ("rtsp://***@cam-2/live", _Dying(clips["yard"], 2), _first_frame_prompts(PROMPTS["yard"]),
                tmp_path / "yard.mp4")]
    lines = []
    report = run_live_sources(model, sources, log=lines.append)
    door, yard = report.sources
    assert door.frames == 7 and door.error is None
    assert yard.frames == 2 and yard.error == "InvalidDataError: corrupt packet"
    assert "rtsp://***@cam-2/live: stopped (InvalidDataError: corrupt packet); the other sources go on" in lines
    assert report.failed == [yard] and "stopped: InvalidDataError" in yard.line()
    assert len(_decoded(tmp_path / "door.mp4")) == 7 and len(_decoded(tmp_path / "yard.mp4")) == 2


def test_a_source_that_sends_frames_of_another_size_stops_alone(model, tmp_path):
    clips = _clips()
    garbage = list(clips["yard"][:3]) + [np.zeros((10, 10, 3), np.uint8)] + list(clips["yard"][3:])
    sources = [("door", FrameArray(clips["door"]), _first_frame_prompts(PROMPTS["door"]), None),
               ("yard", _ListSource(garbage), _first_frame_prompts(PROMPTS["yard"]), None)]
    report = run_live_sources(model, sources, log=lambda m: None)
    assert [r.frames for r in report.sources] == [7, 3]
    assert report.sources[1].error == "frame 3 is 10x10, the stream is 64x64"


class _ListSource(FrameArray):
    """Frames of any sizes, as a misbehaving source may send them."""

    def __init__(self, images):
        self.frames, self.size, self.fps = images, images[0].shape[:2], None


def test_a_live_source_that_gives_up_reconnecting_stops_alone_and_stalls_nobody(model):
    """A live source is polled without waiting: while one source is silent (reconnecting), the other's
    frames go on being tracked; when it gives up, it stops alone."""
    clips = _clips()

    class Flaky(LiveSource):
        def __init__(self):
            self.size, self.fps = (64, 64), 30.0

            connections = []

            def frames():  # two frames, then the connection is lost for good
                connections.append(1)
                if len(connections) == 1:
                    yield clips["yard"][0]
                    yield clips["yard"][1]
                raise OSError("connection reset")
            self._reader = LatestFrameReader(frames, "rtsp://***@flaky/live",
                                             backoff=Backoff(initial=0.05, maximum=0.05, max_attempts=2))

    class Steady(LiveSource):
        def __init__(self):
            self.size, self.fps = (48, 80), 30.0

            def frames():  # until closed
                while True:
                    for image in clips["door"]:
                        time.sleep(0.03)
                        yield image
            self._reader = LatestFrameReader(frames, "steady", backoff=None)

    flaky, steady = Flaky(), Steady()
    try:
        report = run_live_sources(model, [("steady", steady, _first_frame_prompts(PROMPTS["door"]), None),
                                          ("rtsp://***@flaky/live", flaky, _first_frame_prompts(PROMPTS["yard"]), None)],
                                  max_frames=8, log=lambda m: None)
    finally:
        flaky.close()
        steady.close()
    steady_report, flaky_report = report.sources
    assert steady_report.error is None and steady_report.frames == 8 and len(steady_report.latencies) == 8
    assert 1 <= flaky_report.frames <= 2 and "gave up reconnecting (connection reset)" in flaky_report.error
    assert flaky_report.seconds < steady_report.seconds  # it stopped first; the other went on


# ---------------------------------------------------------------- sources files and the command line
def _video(path, frames, fps):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def test_a_video_file_plays_live_at_its_own_rate(tmp_path):
    path = _video(tmp_path / "clip.mp4", moving_shapes(10, (48, 80)), 20)
    started = time.monotonic()
    with open_live(str(path)) as source:
        assert isinstance(source, PacedVideo) and source.size == (48, 80) and source.fps == 20
        frames = list(source)
    assert time.monotonic() - started >= 9 / 20 * 0.9  # released on the file's clock, not as fast as decoded
    assert len(frames) == 10 and [f.index for f in frames] == list(range(10)) and frames[0].captured_at


def test_vos_live_sources_tracks_files_of_different_sizes_and_rates(tmp_path, capsys):
    checkpoint = save_model(tiny_tracking_model(), tmp_path / "tiny.pt")
    _video(tmp_path / "a.mp4", moving_shapes(12, (48, 80)), 12)
    _video(tmp_path / "b.mp4", moving_shapes(8, (64, 64), seed=1), 8)
    (tmp_path / "b-prompts.json").write_text(json.dumps([{"obj_id": 2, "box": [10, 10, 40, 40]}]))
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps([
        {"source": "a.mp4", "prompts": [{"obj_id": 1, "points": [[20, 20]]}], "out": "a-out.mp4"},
        {"source": "b.mp4", "prompts": "b-prompts.json", "out": "b-out.mp4"},
    ]))
    assert main(["live", "--sources", str(sources), "--checkpoint", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert f"reading {tmp_path / 'a.mp4'}: 80x48 at 12 fps" in printed and "reading" in printed
    assert f"done: {tmp_path / 'b.mp4'}: " in printed and "done: all 2 sources:" in printed
    for name in ("a-out.mp4", "b-out.mp4"):
        assert len(_decoded(tmp_path / name)) >= 1


def test_vos_live_sources_reports_a_source_that_cannot_be_opened_without_its_password(tmp_path, capsys):
    checkpoint = save_model(tiny_tracking_model(), tmp_path / "tiny.pt")
    _video(tmp_path / "a.mp4", moving_shapes(4, (48, 80)), 25)
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps([
        {"source": "rtsp://viewer:hunter22@127.0.0.1:9/live", "prompts": [{"points": [[5, 5]]}]},
        {"source": "a.mp4", "prompts": [{"points": [[20, 20]]}]},
    ]))
    assert main(["live", "--sources", str(sources), "--checkpoint", str(checkpoint), "--max-reconnects", "0"]) == 1
    printed = capsys.readouterr().out
    assert "hunter22" not in printed
    assert "done: rtsp://***@127.0.0.1:9/live: 0 frames" in printed and "stopped: cannot be opened" in printed
    assert "done: all 2 sources: " in printed and f"done: {tmp_path / 'a.mp4'}: " in printed
    assert printed.count("stopped:") == 1  # the file played on
    sources.write_text(json.dumps([{"source": "rtsp://viewer:hunter22@127.0.0.1:9/live", "prompts": [{"points": [[5, 5]]}]}]))
    assert main(["live", "--sources", str(sources), "--checkpoint", str(checkpoint)]) == 2
    error = capsys.readouterr().err
    assert f"{sources}, source 0: rtsp://***@127.0.0.1:9/live: cannot be opened" in error and "hunter22" not in error


@pytest.mark.parametrize("content, message", [
    ("{", "not valid JSON"),
    ("[]", "expected a non-empty list of sources"),
    ('[{"source": "0"}]', "source 0: missing prompts"),
    ('[{"source": "0", "prompts": [{"points": [[1, 1]]}], "fps": 3}]', r"source 0: unknown keys \['fps'\]"),
    ('[{"source": "0", "prompts": [{"points": [[1, 1]]}]}, {"source": 1.5, "prompts": []}]',
     "source 1: source must be a webcam index"),
    ('[{"source": "0", "prompts": [{"points": [[1, 1]]}]}, {"source": "1", "prompts": [{"points": [1]}]}]',
     "source 1, prompt 0: "),
    ('[{"source": "0", "prompts": [{"frame": 3, "points": [[1, 1]]}]}]', "source 0: object 1: live prompts are for the first frame"),
    ('[{"source": "0", "prompts": "missing.json"}]', "source 0: .*missing.json"),
    ('[{"source": "0", "prompts": [{"points": [[1, 1]]}], "out": "x.mp4"},'
     ' {"source": "1", "prompts": [{"points": [[1, 1]]}], "out": "x.mp4"}]', "source 1: out .*x.mp4 is source 0's output too"),
])
def test_sources_file_mistakes_name_the_file_and_entry(tmp_path, content, message):
    path = tmp_path / "sources.json"
    path.write_text(content)
    with pytest.raises(SourcesError, match=message) as err:
        read_sources_file(path)
    assert str(err.value).startswith(str(path))


def test_vos_live_sources_refuses_per_run_prompts_and_bad_files_before_loading_a_model(tmp_path, capsys):
    path = tmp_path / "sources.json"
    path.write_text('[{"source": "0", "prompts": [{"points": [[1, 1]]}]}]')
    assert main(["live", "--sources", str(path), "--point", "1,1"]) == 2
    assert "--point/--box/--mask cannot be given with it" in capsys.readouterr().err
    path.write_text('[{"source": "0"}]')
    assert main(["live", "--sources", str(path), "--checkpoint", str(tmp_path / "absent.pt")]) == 2
    assert f"{path}, source 0: missing prompts" in capsys.readouterr().err
    assert main(["live", "--point", "1,1"]) == 2
    assert "needs a source" in capsys.readouterr().err


@pytest.mark.slow
def test_vos_live_sources_reads_two_rtsp_streams(rtsp, tmp_path, capsys):  # noqa: F811 - the fixture
    checkpoint = save_model(tiny_tracking_model(), tmp_path / "tiny.pt")
    sources = tmp_path / "sources.json"
    sources.write_text(json.dumps([
        {"source": rtsp.url("viewer:secret@"), "prompts": [{"points": [[160, 120]]}], "out": "one.mp4"},
        {"source": rtsp.url(), "prompts": [{"box": [100, 60, 220, 180]}], "out": "two.mp4"},
    ]))
    assert main(["live", "--sources", str(sources), "--checkpoint", str(checkpoint), "--max-frames", "20",
                 "--transport", "udp"]) == 0
    printed = capsys.readouterr().out
    assert "secret" not in printed and "done: rtsp://***@127.0.0.1" in printed and "latency median" in printed
    assert "done: all 2 sources: 40 frames" in printed
    assert len(_decoded(tmp_path / "one.mp4")) == len(_decoded(tmp_path / "two.mp4")) == 20


def test_groups_by_default_as_many_as_threads_and_one_for_a_compiled_model():
    from vos.jobs.live_sources import _default_workers

    model = tiny_tracking_model()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert _default_workers(model) == 2
        model.compiled = True  # what vos.model.compiled.compile_model marks: compilation is one thread's at a time
        assert _default_workers(model) == 1
    finally:
        torch.set_num_threads(before)
