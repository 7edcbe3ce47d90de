"""Live latency on a real RTSP stream on loopback: capture-to-mask time per frame (median, 95th percentile)
and proof that a tracker slower than the camera never accumulates lag.

Starts GStreamer's RTSP server (``tests/rtsp_server.py``, under the system Python) serving live H.264 at
30 fps, reads it with :class:`streams.NetworkStream` over TCP and tracks one object with the live tracker.
Latency is measured from the moment a frame is decoded to the moment its mask is ready. "Lag" is how many
frames the stream had decoded beyond the one being tracked when its tracking began: it stays at 0 or 1
however slow the tracker is, because the reader keeps only the newest frame (the rest are dropped and
counted). Runs the embedded model and, as a deliberately slow consumer, sam2.1_hiera_tiny at 512 px.
Writes ``benchmarks/results/live_latency.{json,md}``.

    python benchmarks/live_latency.py [--seconds 20] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "rtsp_server.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_rtsp_server(fps: int, width: int, height: int) -> tuple[subprocess.Popen, str]:
    """The tests' loopback RTSP server (under the system Python, which has GStreamer's bindings) serving live
    H.264, once it listens; and its URL. The caller kills it."""
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", str(SERVER), str(port), str(fps), str(width), str(height)],
                              stdout=subprocess.PIPE, text=True)
    if server.stdout.readline().strip() != "ready":
        server.kill()
        raise SystemExit("the RTSP server did not start (GStreamer's RTSP server installed?)")
    return server, f"rtsp://127.0.0.1:{port}/live"


def measure(model, url: str, seconds: float) -> dict:
    from streams import NetworkStream
    from vos import LiveTracker, Prompt

    tracker = LiveTracker(model)
    latencies, lags = [], []
    with NetworkStream(url) as stream:
        h, w = stream.size
        first = stream.read(timeout=10)
        tracker.step(first.image, {1: Prompt.make(points=[[w / 2, h / 2]])})
        end = time.time() + seconds
        while time.time() < end:
            frame = stream.read(timeout=10)
            lags.append(stream.stats.decoded - 1 - frame.index)
            result = tracker.step(frame.image)
            _ = result.masks
            latencies.append(time.time() - frame.captured_at)
        stats = stream.stats
    lat = np.array(latencies) * 1000
    return {
        "model": f"{model.config.name} at {model.config.image_size} px",
        "frames_tracked": len(latencies),
        "tracked_fps": len(latencies) / seconds,
        "latency_ms_median": float(np.median(lat)),
        "latency_ms_p95": float(np.percentile(lat, 95)),
        "latency_ms_first_half_median": float(np.median(lat[: len(lat) // 2])),
        "latency_ms_second_half_median": float(np.median(lat[len(lat) // 2 :])),
        "lag_frames_max": int(max(lags)),
        "dropped": stats.dropped,
        "decoded": stats.decoded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import vos
    from vos.model.config import get_config
    from vos.weights.checkpoint import build_model

    server, url = start_rtsp_server(30, 640, 480)
    try:
        models = [vos.load_model(), build_model(get_config("sam2.1_hiera_tiny").replace(image_size=512))]
        rows = [measure(m, url, args.seconds) for m in models]
    finally:
        server.kill()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live_latency.json").write_text(json.dumps({"threads": args.threads, "stream": "640x480 H.264 at 30 fps, RTSP over TCP on loopback", "runs": rows}, indent=1))
    lines = [
        "# Live latency on an RTSP stream (loopback, 640x480 H.264 at 30 fps, TCP)",
        "",
        f"{args.seconds:.0f} s per model, {args.threads} CPU threads. Latency: frame decoded -> mask ready. Lag: frames "
        "the stream was ahead of the tracked frame when tracking began (the reader keeps only the newest).",
        "",
        "| model | tracked fps | latency median (ms) | p95 (ms) | median, 1st half -> 2nd half (ms) | max lag (frames) | dropped / decoded |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['tracked_fps']:.1f} | {r['latency_ms_median']:.0f} | {r['latency_ms_p95']:.0f} | "
                     f"{r['latency_ms_first_half_median']:.0f} -> {r['latency_ms_second_half_median']:.0f} | "
                     f"{r['lag_frames_max']} | {r['dropped']} / {r['decoded']} |")
    (args.out / "live_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
