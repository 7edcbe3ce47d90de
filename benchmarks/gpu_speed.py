"""Speed on a GPU (or any device): vos eager, vos compiled (``load_model(..., compile=True)``) and the official
predictor without and with its own ``vos_optimized`` (its compiled path), same random weights in the official
checkpoint format, same frames, one run. Installs nothing; needs only what the tests install (vos, ``sam2``).

For each config, a fresh worker process per tool loads the checkpoint file as a user would, clicks on frame 0
for each object count in turn (1 and 8 by default) and propagates: frames/s after ``--warmup`` frames (the
memory bank is full after 7; compiling happens there too), peak device memory (CUDA: PyTorch's peak
allocation; CPU: the worker's peak resident memory), the graphs compiled and the seconds spent compiling
(vos compiled), and how far each tool's masks are from the official predictor's (IoU per object and frame,
min and mean). A worker that passes ``--worker-timeout`` or fails is a result too (its last error line).

Frames: ``../shared/data/videos/bedroom.mp4`` when there, else a generated clip of moving textured shapes.

    python benchmarks/gpu_speed.py                        # CUDA: hiera_t and hiera_b+ at 1024 px, 1 and 8 objects
    python benchmarks/gpu_speed.py --device cpu --size 256 --frames 8 --warmup 4 --configs sam2.1_hiera_tiny

Writes ``benchmarks/results/gpu_speed_<device>.{json,md}``.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from speed_vs_official import VIDEO, YAML, clicks, mask_iou, peak_memory_mb, reset_peak_memory, weights

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("official", "official vos_optimized", "vos eager", "vos compiled")


# ---------------------------------------------------------------------- inputs, written once per run
def write_frames(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if VIDEO.exists():
        from streams import VideoFile

        with VideoFile(VIDEO) as video:
            images = [video.read(i).image for i in range(count)]
    else:  # textured background, a disc and a square moving across it, 960x540
        rng = np.random.default_rng(0)
        background = cv2.resize(rng.integers(0, 255, (34, 60, 3), dtype=np.uint8), (960, 540), interpolation=cv2.INTER_CUBIC)
        images = []
        for i in range(count):
            image = background.copy()
            cv2.circle(image, (200 + 12 * i, 270), 90, (230, 60, 40), -1)
            cv2.rectangle(image, (600 - 8 * i, 120), (760 - 8 * i, 300), (40, 200, 90), -1)
            images.append(image)
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


def write_checkpoint(path: Path, config: str, size: int) -> Path:
    """Random weights in the official ``{"model": state_dict}`` format, objects judged present."""
    torch.save({"model": weights(config, size)}, path)
    return path


# ---------------------------------------------------------------------- one tool in a worker
def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    else:
        reset_peak_memory()


def _peak_mb(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else peak_memory_mb()


def _timed(results, warmup: int, device: str) -> tuple[float, list[np.ndarray]]:
    """Frames/s over the frames after ``warmup`` of ``results`` (each yielding boolean masks ``(N, H, W)``)."""
    masks, t0 = [], None
    for i, m in enumerate(results):
        masks.append(m)
        if i + 1 == warmup:
            _synchronize(device)
            t0 = time.perf_counter()
    _synchronize(device)
    return (len(masks) - warmup) / (time.perf_counter() - t0), masks


def run_vos(job: dict, compiled: bool) -> dict:
    import vos
    from vos.model.compiled import compile_stats

    model = vos.load_model(job["checkpoint"], image_size=job["size"], device=job["device"], compile=compiled)
    out = {}
    for objects in job["objects"]:
        before = compile_stats()
        _reset_peak(job["device"])
        predictor = vos.VideoPredictor(model, job["frames"])
        h, w = predictor.video_size
        for i, (x, y) in enumerate(clicks(objects, w, h)):
            predictor.add_points(0, i + 1, [[x, y]])
        fps, masks = _timed((r.masks for r in predictor.propagate(0)), job["warmup"], job["device"])
        predictor.close()
        cost = compile_stats() - before
        out[objects] = {"fps": fps, "peak_mb": _peak_mb(job["device"]), "masks": masks,
                        **({"graphs_compiled": cost.graphs, "compile_seconds": cost.seconds} if compiled else {})}
    return out


def run_official(job: dict, optimized: bool) -> dict:
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        f"configs/sam2.1/sam2.1_hiera_{YAML[job['config']]}.yaml", job["checkpoint"], device=job["device"],
        hydra_overrides_extra=[f"++model.image_size={job['size']}"], apply_postprocessing=False,
        vos_optimized=optimized)
    out = {}
    with torch.inference_mode():
        for objects in job["objects"]:
            _reset_peak(job["device"])
            state = predictor.init_state(job["frames"])
            h, w = state["video_height"], state["video_width"]
            for i, (x, y) in enumerate(clicks(objects, w, h)):
                predictor.add_new_points_or_box(state, 0, i + 1, points=[[x, y]], labels=[1])
            results = ((m[:, 0] > 0).cpu().numpy() for _, _, m in predictor.propagate_in_video(state))
            fps, masks = _timed(results, job["warmup"], job["device"])
            out[objects] = {"fps": fps, "peak_mb": _peak_mb(job["device"]), "masks": masks}
    return out


def worker(job: dict) -> None:
    if job["device"] == "cpu" and job.get("threads"):
        torch.set_num_threads(job["threads"])
    tool = job["tool"]
    out = run_official(job, tool.endswith("vos_optimized")) if tool.startswith("official") else run_vos(job, tool.endswith("compiled"))
    for objects, row in out.items():
        np.savez_compressed(f"{job['masks']}-{objects}.npz", *row.pop("masks"))
    print("RESULT " + json.dumps(out))


def spawn(job: dict, timeout: float) -> dict:
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True,
                              cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout:.0f} s"}
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        errors = [x for x in proc.stderr.splitlines() if x and not x.startswith(" ")]
        print(f"{job['tool']} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return {"error": errors[-1] if errors else f"exit status {proc.returncode}"}
    return {"runs": json.loads(line[0][7:]), "worker_seconds": time.monotonic() - started}


# ---------------------------------------------------------------------- the run
def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU ({platform.processor() or platform.machine()}, {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", default=["sam2.1_hiera_tiny", "sam2.1_hiera_base_plus"], choices=list(YAML))
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (CPU device only)")
    parser.add_argument("--worker-timeout", type=float, default=150.0, help="seconds a worker may take")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(json.loads(args.worker))
    if args.warmup >= args.frames:
        parser.error("--warmup must be below --frames")
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        frames = write_frames(Path(tmp) / "frames", args.frames)
        for config in args.configs:
            checkpoint = write_checkpoint(Path(tmp) / f"{config}.pt", config, args.size)
            results, prefix = {}, {t: f"{tmp}/{config}-{t.replace(' ', '_')}" for t in args.tools}
            for tool in args.tools:
                job = dict(tool=tool, config=config, size=args.size, objects=args.objects, device=args.device,
                           checkpoint=str(checkpoint), frames=str(frames), warmup=args.warmup, threads=args.threads,
                           masks=prefix[tool])
                results[tool] = spawn(job, args.worker_timeout)
                print(f"{config} {tool}: " + json.dumps(results[tool]), flush=True)
            for objects in args.objects:
                row = {"config": config, "size": args.size, "objects": objects}
                reference = None
                if "runs" in results.get("official", {}):
                    reference = list(np.load(f"{prefix['official']}-{objects}.npz").values())
                for tool, result in results.items():
                    if "error" in result:
                        row[tool] = {"error": result["error"]}
                        continue
                    row[tool] = dict(result["runs"][str(objects)])
                    if reference is not None and tool != "official":
                        iou = mask_iou(list(np.load(f"{prefix[tool]}-{objects}.npz").values()), reference)
                        row[tool]["iou_vs_official"] = {"min": float(iou.min()), "mean": float(iou.mean())}
                rows.append(row)
    meta = {"device": device_name(args.device), "torch": torch.__version__, "size": args.size,
            "frames": args.frames, "warmup": args.warmup, "seconds": time.monotonic() - started,
            "frames_source": VIDEO.name if VIDEO.exists() else "generated moving shapes (960x540)",
            "command": " ".join(["python benchmarks/gpu_speed.py", *sys.argv[1:]])}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "gpu_speed_" + ("cuda" if args.device.startswith("cuda") else args.device)
    (args.out / f"{name}.json").write_text(json.dumps({**meta, "rows": rows}, indent=1))
    text = report(meta, rows, args.tools)
    (args.out / f"{name}.md").write_text(text)
    print(text)


def report(meta: dict, rows: list[dict], tools: list[str]) -> str:
    lines = [f"# Speed on {meta['device']}: vos eager and compiled against the official predictor", "",
             f"torch {meta['torch']}; {meta['frames_source']}, {meta['frames']} frames, frames/s after {meta['warmup']} "
             f"(compiling included in those); random weights in the official format at {meta['size']} px; the whole run "
             f"took {meta['seconds']:.0f} s. Command: `{meta['command']}`.", "",
             "| config | objects | " + " | ".join(f"{t} frames/s" for t in tools) + " | peak MB (" + " / ".join(tools)
             + ") | masks vs official, IoU min / mean (" + " / ".join(t for t in tools if t != "official")
             + ") | vos compiled: graphs, compile s |",
             "|---|---|" + "---|" * len(tools) + "---|---|---|"]
    for r in rows:
        cells = [r["config"], str(r["objects"])]
        cells += [f"error: {r[t]['error']}" if "error" in r[t] else f"{r[t]['fps']:.2f}" for t in tools]
        cells.append(" / ".join("-" if "error" in r[t] else f"{r[t]['peak_mb']:.0f}" for t in tools))
        cells.append(" / ".join(f"{r[t]['iou_vs_official']['min']:.3f} / {r[t]['iou_vs_official']['mean']:.3f}"
                                if "iou_vs_official" in r[t] else "-" for t in tools if t != "official"))
        compiled = r.get("vos compiled", {})
        cells.append(f"{compiled['graphs_compiled']}, {compiled['compile_seconds']:.0f}" if "graphs_compiled" in compiled else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
