"""End-to-end speed of the embedded model on CPU: frames per second from a video file to masks at video
resolution, for one object and for eight, in exact mode (float32) and fast mode (bfloat16 autocast), eager
or compiled (``float32+compile``: ``load_model(..., compile=True)``, timed after a warm-up that compiles, with
the graphs compiled and the compile time), with the time per stage and how far each mode's masks are from
exact mode's (IoU per object and frame).

Runs the offline predictor over ``../shared/data/videos/bedroom.mp4`` (960x540): decoding, the image
encoder, memory attention, the decoder, the memory encoder, and the masks at video resolution (what
``FrameResult.masks`` hands to a sink). Writes ``benchmarks/results/embedded_fps.{json,md}``.

    python benchmarks/embedded_fps.py [--frames 200] [--threads 2] [--precisions float32 bfloat16 float32+compile]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from stage_timer import STAGES, time_stages

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "bedroom.mp4"


def run(model, num_objects: int, frames: int, precision: str = "float32") -> dict:
    from streams import VideoFile
    from vos import TrackerSettings, VideoPredictor
    from vos.model.compiled import compile_stats

    before = compile_stats()
    totals: dict[str, float] = defaultdict(float)
    time_stages(model, totals)
    video = VideoFile(VIDEO)
    h, w = video.size
    predictor = VideoPredictor(model, video, TrackerSettings.official(keep_history=False, precision=precision))
    for i in range(num_objects):  # clicks spread over the frame
        x, y = w * (0.2 + 0.6 * (i % 4) / 3), h * (0.3 + 0.4 * (i // 4))
        predictor.add_points(0, i + 1, [[x, y]])
    for k in STAGES:
        totals[k] = 0.0
    t0 = time.perf_counter()
    done = 0
    masks = []
    for result in predictor.propagate(0, max_frames=frames - 1):
        masks.append(result.masks)  # masks at video resolution, as a sink receives them
        done += 1
    seconds = time.perf_counter() - t0
    predictor.close()
    staged = sum(totals.values())
    compiled = compile_stats() - before
    return {
        "graphs_compiled": compiled.graphs,
        "compile_seconds": compiled.seconds,
        "masks": np.stack(masks),
        "precision": precision,
        "objects": num_objects,
        "frames": done,
        "seconds": seconds,
        "fps": done / seconds,
        "ms_per_frame": {**{k: 1000 * v / done for k, v in totals.items()},
                         "decode, resize and masks": 1000 * (seconds - staged) / done},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--checkpoint", default=None, help="default: the embedded model")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import vos
    from evaluation.metrics import region_similarity

    rows = []
    for objects in (1, 8):
        exact = None
        for mode in args.precisions:
            precision, _, compiled = mode.partition("+")
            model = vos.load_model(args.checkpoint, compile=compiled == "compile")
            warmup = run(model, objects, 20, precision)  # compiles, and recompiles as the bank fills
            row = run(model, objects, args.frames, precision)
            row.update(mode=mode, warmup_graphs_compiled=warmup["graphs_compiled"],
                       warmup_compile_seconds=warmup["compile_seconds"])
            masks = row.pop("masks")
            if mode == "float32":
                exact = masks
            elif exact is not None:
                iou = region_similarity(exact.reshape(-1, *exact.shape[-2:]), masks.reshape(-1, *masks.shape[-2:]))
                row["iou_vs_exact"] = {"min": float(iou.min()), "mean": float(iou.mean())}
            print(json.dumps(row), flush=True)
            rows.append(row)
    model = vos.load_model(args.checkpoint)
    one = {r["mode"]: r["fps"] for r in rows if r["objects"] == 1}
    eight = {r["mode"]: r["fps"] for r in rows if r["objects"] == 8}
    result = {
        "model": model.config.name,
        "image_size": model.config.image_size,
        "video": f"{VIDEO.name} (960x540)",
        "threads": args.threads,
        "cpu": f"{platform.processor() or platform.machine()} ({torch.backends.cpu.get_cpu_capability()})",
        "torch": torch.__version__,
        "runs": rows,
        "eight_over_one": {p: one[p] / eight[p] for p in one if p in eight},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embedded_fps.json").write_text(json.dumps(result, indent=1))
    stages = list(rows[0]["ms_per_frame"])
    lines = [
        f"# Embedded model speed ({result['model']}, {result['image_size']} px) on CPU",
        "",
        f"Offline predictor over {args.frames} frames of {result['video']}, CPU {result['cpu']}, {args.threads} threads, torch "
        f"{torch.__version__}; from the video file to masks at video resolution. Fast mode's masks are compared "
        "with exact mode's, object by object and frame by frame.",
        "",
        "| objects | mode | fps | " + " | ".join(f"{s} (ms)" for s in stages)
        + " | IoU vs exact (min / mean) | graphs compiled, compile s: warm-up (timed run) |",
        "|---|---|---|" + "---|" * len(stages) + "---|---|",
    ]
    for r in rows:
        iou = r.get("iou_vs_exact")
        compiled = (f"{r['warmup_graphs_compiled']}, {r['warmup_compile_seconds']:.0f} ({r['graphs_compiled']}, "
                    f"{r['compile_seconds']:.0f})" if "compile" in r["mode"] else "-")
        lines.append(f"| {r['objects']} | {r['mode']} | {r['fps']:.1f} | "
                     + " | ".join(f"{r['ms_per_frame'][s]:.1f}" for s in stages)
                     + (f" | {iou['min']:.3f} / {iou['mean']:.3f}" if iou else " | -") + f" | {compiled} |")
    lines.append("")
    lines += [f"{p}: 8 objects cost {v:.2f}x the time of one." for p, v in result["eight_over_one"].items()]
    (args.out / "embedded_fps.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
