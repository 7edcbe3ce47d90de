"""How long ``vos app`` takes to answer a click, as the page sees it: the HTTP request that adds a click or a box
and the mask layer it then draws, on ``../shared/data/videos/bedroom.mp4`` (960x540) with the embedded model.

A click on a frame not seen before pays for the frame's image features; clicks and boxes on a frame already
seen reuse them (the predictor keeps the features of the last 8 frames). Also times tracking through the app
(frames per second from the Track button to the last mask) and the frame JPEG the page loads when scrubbing.
Writes ``benchmarks/results/app_latency.{json,md}``.

    python benchmarks/app_latency.py [--repeats 10] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "bedroom.mp4"
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]  # other work on the machine slows every number below
    from app_client import (
        running_app,  # the tests' client: the app on a free loopback port
    )

    times: dict[str, list[float]] = {"click, new frame": [], "click, same frame": [], "box, same frame": [],
                                     "frame JPEG": []}
    with running_app(VIDEO) as client:
        client.ok("/api/object")
        time.sleep(5)  # the app warms the model up in the background when it opens a video

        def timed(what: str, path: str, body: dict, frame: int) -> None:
            start = time.perf_counter()
            client.ok(path, body)
            client.layer(frame)
            times[what].append(time.perf_counter() - start)

        for k in range(args.repeats):
            frame = 10 * (k + 1)
            timed("click, new frame", "/api/click", {"frame": frame, "obj_id": 1, "x": 395, "y": 220}, frame)
            timed("click, same frame", "/api/click", {"frame": frame, "obj_id": 1, "x": 420, "y": 300, "positive": False}, frame)
            timed("box, same frame", "/api/box", {"frame": frame, "obj_id": 1, "x1": 300, "y1": 40, "x2": 520, "y2": 400}, frame)
            start = time.perf_counter()
            client.get(f"/api/frame/{frame + 5}.jpg")
            times["frame JPEG"].append(time.perf_counter() - start)
        for k in range(args.repeats):
            client.ok("/api/clear", {"frame": 10 * (k + 1), "obj_id": 1})
        client.ok("/api/click", {"frame": 0, "obj_id": 1, "x": 395, "y": 220})
        start = time.perf_counter()
        client.ok("/api/track")
        job = client.wait_job(timeout=1200)
        track_fps = job["done"] / (time.perf_counter() - start)
    rows = {what: {"median_ms": 1000 * float(np.median(v)), "max_ms": 1000 * float(np.max(v)), "n": len(v)}
            for what, v in times.items()}
    result = {"command": "python benchmarks/app_latency.py " + " ".join(sys.argv[1:]), "video": "bedroom.mp4 (960x540)",
              "threads": args.threads, "cpu": platform.processor() or platform.machine(), "rows": rows,
              "track_fps": track_fps, "tracked_frames": job["done"], "load_average_at_start": load}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "app_latency.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# vos app: time to a mask (embedded model, {result['video']}, {args.threads} threads)", "",
             f"`{result['command']}`", "", "| request, then the mask layer the page draws | median | max | n |",
             "|---|---|---|---|"]
    lines += [f"| {what} | {r['median_ms']:.0f} ms | {r['max_ms']:.0f} ms | {r['n']} |" for what, r in rows.items()]
    lines += ["", f"Tracking through the app: {track_fps:.1f} frames/s over {job['done']} frames (forward from frame 0).",
              "", f"CPU: {result['cpu']}; load average {load:.1f} when the run started (other jobs were sharing the cores)."]
    (out / "app_latency.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
