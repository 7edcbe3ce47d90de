"""Live sources: the newest-frame reader, reconnection, webcams (OpenCV on a device path), and a real RTSP
server on loopback (GStreamer, installed by .ci/run) read over TCP and UDP, killed and restarted mid-run."""
from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import av
import numpy as np
import pytest
from tiny import tiny_tracking_model
from videos import moving_shapes

from streams import Backoff, NetworkStream, SourceError, Webcam, open_live, redact_url
from streams.latest import LatestFrameReader
from vos.cli import main
from vos.weights.checkpoint import save_model

SERVER = Path(__file__).parent / "rtsp_server.py"
SYSTEM_PYTHON = "/usr/bin/python3"


def test_credentials_are_redacted():
    assert redact_url("rtsp://admin:hunter2@10.0.0.5:554/stream1") == "rtsp://***@10.0.0.5:554/stream1"
    assert redact_url("rtsp://10.0.0.5/stream") == "rtsp://10.0.0.5/stream"


def test_open_live_rejects_what_is_not_live():
    with pytest.raises(SourceError, match="clip.mp4: not a webcam index"):
        open_live("clip.mp4")


# ---------------------------------------------------------------- newest-frame reader
def _images(count: int, delay: float = 0.0, fail: bool = False):
    def frames():
        for i in range(count):
            time.sleep(delay)
            yield np.full((4, 4, 3), i % 256, np.uint8)
        if fail:
            raise OSError("connection reset")
    return frames


def test_a_slow_consumer_gets_the_newest_frame_and_drops_are_counted():
    reader = LatestFrameReader(_images(60, delay=0.005), "test", backoff=None)
    taken = []
    while (frame := reader.get(timeout=5)) is not None:
        taken.append(frame.index)
        # Never more than one frame behind what has been decoded.
        assert reader.stats.decoded - 1 - frame.index <= 1
        time.sleep(0.03)
    reader.close()
    assert taken == sorted(taken) and len(taken) < 60
    assert reader.stats.dropped == 60 - len(taken) and reader.stats.delivered == len(taken)


def test_live_frames_carry_capture_time_and_no_media_time():
    before = time.time()
    reader = LatestFrameReader(_images(1), "cam", backoff=None)
    frame = reader.get(timeout=5)
    reader.close()
    assert frame.media_time is None and before <= frame.captured_at <= time.time()


def test_live_latency_is_measured_from_capture_time_only():
    """A file-like source has media times, not capture times: no latency may be made up from them, however
    large they are (an fps this small puts frame 1 at 10^10 s of media time)."""
    from streams import FrameArray
    from vos.jobs.live import run_live
    from vos.tracking.prompts import FramePrompt, Prompt

    source = FrameArray(moving_shapes(3, (64, 64)), fps=1e-10)
    assert source.read(1).media_time > 1e9 and source.read(1).captured_at is None
    report = run_live(tiny_tracking_model(), source, [FramePrompt(0, 1, Prompt.make(points=[[32, 32]]))],
                      show=False, log=lambda m: None)
    assert report.frames == 3 and report.latencies == []


def test_reader_reconnects_with_backoff_records_the_gap_and_gives_up_in_the_end():
    connections = []

    def frames():
        connections.append(time.time())
        if len(connections) > 2:
            raise OSError("connection refused")
        yield from _images(5, fail=True)()

    events = []
    reader = LatestFrameReader(frames, "flaky", backoff=Backoff(initial=0.05, maximum=0.1, max_attempts=3), on_event=events.append)
    got = []
    with pytest.raises(SourceError, match="flaky: gave up reconnecting"):
        while (frame := reader.get(timeout=5)) is not None:
            got.append(frame.index)
            time.sleep(0.001)
    reader.close()
    assert len(connections) == 2 + 3  # two good connections, then three failed attempts
    assert got[-1] == 9  # frames of both connections, numbered on
    assert reader.stats.reconnects == 1 and len(reader.stats.gaps) == 1 and reader.stats.gaps[0] >= 0.05
    assert events[0] == "flaky: lost (connection reset); reconnecting" and "flaky: reconnected after" in events[1]


def test_reader_reports_a_source_that_never_opens():
    def frames():
        raise SourceError("cam: cannot be opened")
        yield

    reader = LatestFrameReader(frames, "cam", backoff=None)
    with pytest.raises(SourceError, match="cannot be opened"):
        reader.get(timeout=5)
    reader.close()


# ---------------------------------------------------------------- webcams
def test_webcam_reads_a_device_path_through_opencv(tmp_path):
    path = tmp_path / "camera.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for image in moving_shapes(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with Webcam(str(path), backoff=None) as camera:
        assert camera.size == (96, 160)
        frames = []
        while (frame := camera.read(timeout=5)) is not None:
            frames.append(frame)
            time.sleep(0.01)
    assert frames and frames[0].image.shape == (96, 160, 3) and frames[0].image.dtype == np.uint8
    with pytest.raises(SourceError, match="camera 97: cannot be opened"):
        Webcam(97, backoff=None)


# ---------------------------------------------------------------- RTSP on loopback
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, port: int, fps: int = 30) -> None:
        self.port, self.fps = port, fps
        self.proc = None

    def start(self) -> "RtspServer":
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(self.port), str(self.fps)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"RTSP server did not start: {line} {self.proc.stderr.read()}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def url(self, credentials: str = "") -> str:
        return f"rtsp://{credentials}127.0.0.1:{self.port}/live"


@pytest.fixture
def rtsp():
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                            "from gi.repository import GstRtspServer"], capture_output=True)
    if probe.returncode:
        pytest.skip("GStreamer's RTSP server is not installed (.ci/run installs it)")
    server = RtspServer(_free_port()).start()
    yield server
    server.stop()


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_stream_is_read_live(rtsp, transport):
    with NetworkStream(rtsp.url("viewer:secret@"), transport=transport, backoff=None) as stream:
        assert stream.size == (240, 320) and stream.fps == pytest.approx(30)
        assert "secret" not in stream.name
        frames = [stream.read(timeout=10) for _ in range(20)]
    assert all(f is not None and f.image.shape == (240, 320, 3) for f in frames)
    assert [f.index for f in frames] == sorted(f.index for f in frames)


def test_rtsp_error_names_the_stream_without_credentials(rtsp):
    with pytest.raises(SourceError) as err:
        NetworkStream(f"rtsp://viewer:secret@127.0.0.1:{_free_port()}/live", open_timeout=2, backoff=None)
    assert "rtsp://***@127.0.0.1" in str(err.value) and "secret" not in str(err.value)


def test_rtsp_slow_consumer_never_lags_more_than_one_frame(rtsp):
    with NetworkStream(rtsp.url(), backoff=None) as stream:
        stream.read(timeout=10)
        ages = []
        for _ in range(10):
            time.sleep(0.15)  # a consumer at ~6 fps against a 30 fps stream
            frame = stream.read(timeout=5)
            ages.append(stream.stats.decoded - 1 - frame.index)
        stats = stream.stats
    assert max(ages) <= 1
    assert stats.dropped >= 30


def test_rtsp_survives_the_server_restarting(rtsp):
    events = []
    with NetworkStream(rtsp.url(), read_timeout=2, backoff=Backoff(initial=0.2, maximum=1.0), on_event=events.append) as stream:
        before = [stream.read(timeout=10) for _ in range(5)]
        rtsp.stop()
        time.sleep(1.0)
        rtsp.start()
        after = None
        deadline = time.time() + 30
        while time.time() < deadline:
            frame = stream.read(timeout=1)
            if frame is not None and stream.stats.reconnects:
                after = frame
                break
        assert after is not None, f"no frame after the restart; events: {events}"
        assert after.index > before[-1].index
        assert stream.stats.reconnects >= 1 and stream.stats.gaps and stream.stats.gaps[0] >= 1.0
    assert any("lost" in e for e in events) and any("reconnected" in e for e in events)


@pytest.mark.slow
def test_vos_live_tracks_an_rtsp_stream_and_reports(rtsp, tmp_path, capsys):
    model = tiny_tracking_model()
    checkpoint = save_model(model, tmp_path / "tiny.pt")
    out = tmp_path / "live.mp4"
    code = main(["live", rtsp.url("viewer:secret@"), "--checkpoint", str(checkpoint), "--point", "160,120",
                 "--box", "100,60,220,180", "--out", str(out), "--max-frames", "40", "--no-window"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "reading rtsp://***@127.0.0.1" in printed and "secret" not in printed
    assert "done: 40 frames" in printed and "latency median" in printed and "dropped" in printed
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 40


@pytest.mark.slow
def test_live_tracking_goes_on_through_a_server_restart(rtsp):
    """The tracker keeps running while the camera restarts: frames after the gap are tracked too, and
    the report has the reconnection and its gap."""
    import threading

    from vos.jobs.live import run_live
    from vos.tracking.prompts import FramePrompt, Prompt

    stream = NetworkStream(rtsp.url(), read_timeout=2, backoff=Backoff(initial=0.2, maximum=1.0))

    def restart():
        time.sleep(1.5)
        rtsp.stop()
        time.sleep(1.0)
        rtsp.start()

    restarter = threading.Thread(target=restart)
    restarter.start()
    with stream:
        report = run_live(tiny_tracking_model(), stream, [FramePrompt(0, 1, Prompt.make(points=[[160, 120]]))],
                          show=False, max_frames=150, log=lambda m: None)
    restarter.join()
    assert report.frames == 150
    assert report.reconnects >= 1 and report.gaps and report.gaps[0] >= 1.0
    assert report.latency(0.5) < 1.0


def test_vos_live_refuses_a_transport_for_a_webcam(capsys):
    assert main(["live", "0", "--point", "1,1", "--transport", "udp"]) == 2
    assert "--transport is for network streams, not '0'" in capsys.readouterr().err
