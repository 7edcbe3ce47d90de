"""Speed of the ONNX Runtime backend (CPU execution provider, float32) next to vos's PyTorch exact (float32)
and fast (bfloat16 autocast) modes: same model, same frames, one run.

For each model (the embedded model at 256 px, with its trained weights; SAM 2.1 hiera_t at 512 px with random
weights, its object-score head biased so that objects read as present and every stage runs), the model is
exported once with ``vos.export.exporter.export_model``; then for each object count a fresh worker process per
runtime runs the offline predictor over the first ``--frames`` frames of ``../shared/data/videos/bedroom.mp4``
(960x540, written as JPEGs), clicks on frame 0, and propagation, timed after ``--warmup`` frames (the memory
bank is full after 7). Reports frames per second, the time per stage (the model's per-frame methods, wrapped
by ``stage_timer``; for ONNX Runtime including the copies between PyTorch tensors and its arrays) and how far
each runtime's masks are from exact mode's (IoU per object and frame). ONNX Runtime and PyTorch get the same
number of threads. Writes ``benchmarks/results/onnx_speed.{json,md}`` (``--name`` for another name).

    python benchmarks/onnx_speed.py [--models embedded sam2.1_hiera_tiny] [--objects 1 8] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from speed_vs_official import clicks, frames_dir, mask_iou, timed_frames, weights
from stage_timer import STAGES, time_stages

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"embedded": 256, "sam2.1_hiera_tiny": 512}
RUNTIMES = ["float32", "bfloat16", "onnx"]


def torch_model(name: str):
    import vos
    from vos.model.config import get_config
    from vos.weights.checkpoint import build_model

    if name == "embedded":
        return vos.load_model()
    return build_model(get_config(name).replace(image_size=SIZES[name]), weights(name, SIZES[name]))


def run(job: dict, folder: Path) -> dict:
    from vos import TrackerSettings, VideoPredictor
    from vos.export.runtime import OnnxModel

    if job["runtime"] == "onnx":
        model, precision = OnnxModel(job["export"], threads=job["threads"]), "float32"
    else:
        model, precision = torch_model(job["model"]), job["runtime"]
    totals: dict[str, float] = defaultdict(float)
    time_stages(model, totals)
    predictor = VideoPredictor(model, folder, TrackerSettings(precision=precision))
    h, w = predictor.video_size
    for i, (x, y) in enumerate(clicks(job["objects"], w, h)):
        predictor.add_points(0, i + 1, [[x, y]])
    timed, masks = timed_frames((r.masks for r in predictor.propagate(0)), job["warmup"], totals)
    seconds = sum(timed) / len(timed)
    staged = sum(totals.values()) / len(timed)
    return {"fps": 1 / seconds, "masks": masks,
            "stages_ms": {**{k: 1000 * v / len(timed) for k, v in totals.items()}, "rest": 1000 * (seconds - staged)}}


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    job = json.loads(args.worker)
    with tempfile.TemporaryDirectory() as tmp:
        out = run(job, frames_dir(tmp, job["frames"]))
    np.savez_compressed(job["masks"], *out.pop("masks"))
    print("RESULT " + json.dumps(out))


def spawn(args: argparse.Namespace, job: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--worker", json.dumps(job)],
                          capture_output=True, text=True, cwd=ROOT)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"{job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[0][7:])


def command() -> str:
    """The command as run, with ``nice`` when it ran at a lower priority."""
    return shlex.join(["nice"] * (os.nice(0) > 0) + ["python", "benchmarks/onnx_speed.py", *sys.argv[1:]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=9)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--note", default="", help="a sentence on the machine's state, written into the report")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="onnx_speed", help="file name of the results (NAME.json, NAME.md)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    import onnxruntime

    from vos.export.exporter import export_model

    load = [os.getloadavg()[0]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            export = Path(tmp) / name
            t0 = time.perf_counter()
            export_model(torch_model(name), export)
            export_seconds = time.perf_counter() - t0
            for objects in args.objects:
                row = {"model": name, "size": SIZES[name], "objects": objects, "export_seconds": export_seconds}
                masks = {}
                for runtime in RUNTIMES:
                    masks[runtime] = f"{tmp}/{runtime}.npz"
                    job = dict(model=name, runtime=runtime, objects=objects, frames=args.frames, warmup=args.warmup,
                               threads=args.threads, export=str(export), masks=masks[runtime])
                    row[runtime] = spawn(args, job)
                loaded = {r: list(np.load(m).values()) for r, m in masks.items()}
                for runtime in ("bfloat16", "onnx"):
                    iou = mask_iou(loaded[runtime], loaded["float32"])
                    row[runtime]["iou_vs_float32"] = {"min": float(iou.min()), "mean": float(iou.mean())}
                    row[runtime]["speedup_vs_float32"] = row[runtime]["fps"] / row["float32"]["fps"]
                print(json.dumps(row), flush=True)
                rows.append(row)
    load.append(os.getloadavg()[0])
    result = {"command": command(), "threads": args.threads, "load_average": load, "torch": torch.__version__,
              "onnxruntime": onnxruntime.__version__, "cpu": platform.processor() or platform.machine(),
              "note": args.note, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    (args.out / f"{args.name}.md").write_text(report(args, result))
    print(report(args, result))


def report(args: argparse.Namespace, result: dict) -> str:
    stages = [*STAGES, "rest"]
    lines = [
        "# ONNX Runtime against PyTorch on CPU (same model, same frames, one run)",
        "",
        f"bedroom.mp4 (960x540), {args.frames - args.warmup} timed frames after {args.warmup} warm-up (memory bank "
        f"full), offline predictor, one click per object on frame 0; {args.threads} threads for PyTorch and ONNX "
        f"Runtime alike; torch {result['torch']}, onnxruntime {result['onnxruntime']} (CPU execution provider), "
        f"{result['cpu']}. Exact = PyTorch float32, fast = PyTorch bfloat16 autocast, ONNX = the graphs of "
        "`vos export` (float32). Each runtime runs in a fresh process. Load average (1 min) "
        f"{result['load_average'][0]:.1f} at the start, {result['load_average'][1]:.1f} at the end, on "
        f"{os.cpu_count()} cores. " + (result["note"] or ""),
        "",
        f"Command: `{result['command']}`.",
        "",
        "| model | size | objects | exact fps | fast fps | ONNX fps | ONNX / exact | fast / exact | ONNX masks IoU vs exact (min / mean) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        iou = r["onnx"]["iou_vs_float32"]
        lines.append(f"| {r['model']} | {r['size']} | {r['objects']} | {r['float32']['fps']:.2f} | "
                     f"{r['bfloat16']['fps']:.2f} | {r['onnx']['fps']:.2f} | {r['onnx']['speedup_vs_float32']:.2f}x | "
                     f"{r['bfloat16']['speedup_vs_float32']:.2f}x | {iou['min']:.4f} / {iou['mean']:.4f} |")
    lines += ["", "Time per stage (ms per frame; rest: decoding, resizing, masks at video resolution, the tracker):", "",
              "| model | objects | runtime | " + " | ".join(stages) + " |",
              "|---|---|---|" + "---|" * len(stages)]
    for r in result["rows"]:
        for runtime in RUNTIMES:
            ms = r[runtime]["stages_ms"]
            lines.append(f"| {r['model']} | {r['objects']} | {runtime} | " + " | ".join(f"{ms[s]:.1f}" for s in stages) + " |")
    lines += ["", "Export time (s): " + ", ".join(f"{r['model']} {r['export_seconds']:.0f}"
                                                 for r in result["rows"] if r["objects"] == result["rows"][0]["objects"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
