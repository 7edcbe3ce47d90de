"""Speed of vos's offline predictor next to the official ``sam2`` package, same weights, same frames, same
machine, one run: frames per second, the ratio, time per stage (ours), peak memory, and the floor that
memory attention alone puts under a frame.

For each official config, input size and object count, a fresh worker process runs one tool over the first
``--frames`` frames of ``../shared/data/videos/bedroom.mp4`` (written as JPEGs, the official loader's
input), with random weights (speed does not depend on their values), clicks on frame 0, and propagation,
timed after ``--warmup`` frames. Both run without post-processing (the official hole filling needs its CUDA
extension) and objects are batched in vos (its default). Peak memory is the worker's maximum RSS.

The floor: memory attention's matrix products (4 layers: self-attention over the frame's tokens and
cross-attention to 7 memory frames) at the measured fp32 matrix-multiply ceiling of ``--gflops``.
Writes ``benchmarks/results/speed_vs_official.{json,md}``.

    python benchmarks/speed_vs_official.py --configs sam2.1_hiera_tiny --sizes 512 1024 --objects 1 8
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import torch
from stage_timer import STAGES, time_stages

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "bedroom.mp4"
YAML = {"sam2.1_hiera_tiny": "t", "sam2.1_hiera_small": "s", "sam2.1_hiera_base_plus": "b+", "sam2.1_hiera_large": "l"}


def clicks(num_objects: int, w: int, h: int) -> list[tuple[float, float]]:
    return [(w * (0.2 + 0.6 * (i % 4) / 3), h * (0.3 + 0.4 * (i // 4))) for i in range(num_objects)]


def frames_dir(tmp: str, count: int) -> Path:
    from streams import VideoFile

    folder = Path(tmp) / "frames"
    folder.mkdir()
    with VideoFile(VIDEO) as video:
        for i in range(count):
            cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(video.read(i).image, cv2.COLOR_RGB2BGR))
    return folder


def weights(config: str, size: int) -> dict:
    from vos.config import get_config
    from vos.model import SAM2Model

    torch.manual_seed(0)
    return SAM2Model(get_config(config).replace(image_size=size)).state_dict()


def run_vos(config: str, size: int, objects: int, folder: Path, warmup: int) -> dict:
    from vos import TrackerSettings, VideoPredictor
    from vos.checkpoint import build_model
    from vos.config import get_config

    model = build_model(get_config(config).replace(image_size=size), weights(config, size))
    totals: dict[str, float] = defaultdict(float)
    time_stages(model, totals)
    predictor = VideoPredictor(model, folder, TrackerSettings())
    h, w = predictor.video_size
    for i, (x, y) in enumerate(clicks(objects, w, h)):
        predictor.add_points(0, i + 1, [[x, y]])
    times = []
    t0 = time.perf_counter()
    for result in predictor.propagate(0):
        _ = result.masks
        t1 = time.perf_counter()
        times.append(t1 - t0)
        t0 = t1
        if len(times) == warmup:
            totals.clear()
    timed = times[warmup:]
    return {"seconds_per_frame": sum(timed) / len(timed),
            "stages_ms": {k: 1000 * v / len(timed) for k, v in totals.items()}}


def run_official(config: str, size: int, objects: int, folder: Path, warmup: int) -> dict:
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        f"configs/sam2.1/sam2.1_hiera_{YAML[config]}.yaml", None, device="cpu",
        hydra_overrides_extra=[f"++model.image_size={size}"], apply_postprocessing=False,
    )
    predictor.load_state_dict(weights(config, size))
    times = []
    with torch.inference_mode():
        state = predictor.init_state(str(folder))
        h, w = state["video_height"], state["video_width"]
        for i, (x, y) in enumerate(clicks(objects, w, h)):
            predictor.add_new_points_or_box(state, 0, i + 1, points=[[x, y]], labels=[1])
        t0 = time.perf_counter()
        for _, _, masks in predictor.propagate_in_video(state):
            _ = (masks > 0).cpu().numpy()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            t0 = t1
    timed = times[warmup:]
    return {"seconds_per_frame": sum(timed) / len(timed)}


def attention_floor(size: int, gflops: float, memory_frames: int = 7, layers: int = 4, d: int = 256) -> float:
    """Seconds per frame of memory attention's matrix products at ``gflops``, one object."""
    n = (size // 16) ** 2
    m = memory_frames * n  # (pointer tokens add under 1%)
    flops = layers * (2 * 2 * n * n * d + 2 * 2 * n * m * d)
    return flops / (gflops * 1e9)


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    job = json.loads(args.worker)
    with tempfile.TemporaryDirectory() as tmp:
        folder = frames_dir(tmp, job["frames"])
        run = run_vos if job["tool"] == "vos" else run_official
        out = run(job["config"], job["size"], job["objects"], folder, job["warmup"])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["sam2.1_hiera_tiny"], choices=sorted(YAML))
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--gflops", type=float, default=290.0, help="measured fp32 matmul ceiling")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    rows = []
    for config in args.configs:
        for size in args.sizes:
            for objects in args.objects:
                row = {"config": config, "size": size, "objects": objects,
                       "floor_s": attention_floor(size, args.gflops) * objects}
                for tool in ("vos", "official"):
                    job = dict(tool=tool, config=config, size=size, objects=objects, frames=args.frames, warmup=args.warmup)
                    proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--worker", json.dumps(job)],
                                          capture_output=True, text=True, cwd=ROOT)
                    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
                    if proc.returncode or not line:
                        raise SystemExit(f"{tool} {config} {size} failed:\n{proc.stderr[-2000:]}")
                    row[tool] = json.loads(line[0][7:])
                row["speedup"] = row["official"]["seconds_per_frame"] / row["vos"]["seconds_per_frame"]
                print(json.dumps(row), flush=True)
                rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed_vs_official.json").write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1))
    stages = list(STAGES)
    lines = [
        "# vos against the official sam2 predictor on CPU (same weights, same frames, one run)",
        "",
        f"bedroom.mp4 (960x540), {args.frames - args.warmup} timed frames after {args.warmup} warm-up, {args.threads} threads, "
        f"torch {torch.__version__}. Floor: memory attention's matrix products at {args.gflops:.0f} GFLOP/s (fp32).",
        "",
        "| config | size | objects | vos s/frame | official s/frame | speed-up | floor s | "
        + " | ".join(f"{s} ms" for s in stages) + " | vos peak MB | official peak MB |",
        "|---|---|---|---|---|---|---|" + "---|" * len(stages) + "---|---|",
    ]
    for r in rows:
        v, o = r["vos"], r["official"]
        lines.append(
            f"| {r['config']} | {r['size']} | {r['objects']} | {v['seconds_per_frame']:.2f} | {o['seconds_per_frame']:.2f} | "
            f"{r['speedup']:.2f}x | {r['floor_s']:.2f} | " + " | ".join(f"{v['stages_ms'].get(s, 0):.0f}" for s in stages)
            + f" | {v['peak_rss_mb']:.0f} | {o['peak_rss_mb']:.0f} |"
        )
    for config in args.configs:
        for size in args.sizes:
            by = {r["objects"]: r for r in rows if r["config"] == config and r["size"] == size}
            if 1 in by and 8 in by:
                lines.append("")
                lines.append(f"{config} at {size}: 8 objects cost {by[8]['vos']['seconds_per_frame'] / by[1]['vos']['seconds_per_frame']:.2f}x "
                             f"one object in vos, {by[8]['official']['seconds_per_frame'] / by[1]['official']['seconds_per_frame']:.2f}x in the official predictor.")
    (args.out / "speed_vs_official.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
