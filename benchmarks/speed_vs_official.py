"""Speed of vos's offline predictor next to the official ``sam2`` package (and, for EdgeTAM and EfficientTAM,
their official code, the tests' oracles in ``.oracles/``), same weights, same frames, same
machine, one run: frames per second and the ratio for vos's exact mode (float32) and fast mode (bfloat16
autocast), time per stage for all three, peak memory, how far fast mode's masks are from exact mode's, and
the floor under a frame: its floating-point operations, counted, at the matrix-multiply speed measured in the
same run: an implementation doing the same arithmetic beats it only by outrunning that matrix product
(vos's fast mode does less in memory attention, whose values it projects after attention, so there the
floor of the official arithmetic does not bound it).

For each official config, input size and object count, a fresh worker process runs one tool over the first
``--frames`` frames of ``../shared/data/videos/bedroom.mp4`` (written as JPEGs, the official loader's
input), with random weights (speed does not depend on their values; the object-score head is biased so that
objects read as present and every stage runs), clicks on frame 0, and propagation, timed after ``--warmup``
frames (by then the memory bank is full: 7 frames). Both run without post-processing (the official hole
filling needs its CUDA extension) and objects are batched in vos (its default). Peak memory is the worker's
highest RSS from the first click to the last frame (Linux's peak is reset once the model is built, so the
benchmark's own copies of the random weights do not count). Random weights make masks chaotic, so the fast/exact IoU here is a lower bound on what a
trained model shows (``benchmarks/embedded_fps.py`` measures it on the trained embedded model).

The floor: PyTorch's FLOP counter over one tracked frame with a full bank (all stages, every object), divided
by the GFLOP/s of a large square matrix product (float32 and bfloat16), the best that any worker of the run
measured before its own work. "Best possible
speed-up" is the official time over that floor: where it is below a target, no exact implementation on this
machine reaches the target; the per-stage table shows each stage's floor next to its times.
Writes ``benchmarks/results/speed_vs_official.{json,md}``.

    python benchmarks/speed_vs_official.py --configs sam2.1_hiera_tiny --sizes 512 1024 --objects 1 8
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
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
    from vos.model.config import get_config
    from vos.model.sam2 import SAM2Model

    torch.manual_seed(0)
    state = SAM2Model(get_config(config).replace(image_size=size)).state_dict()
    presence = [k for k in state if k.startswith("sam_mask_decoder.pred_obj_score_head.") and k.endswith("bias")]
    state[presence[-1]] = torch.full_like(state[presence[-1]], 2.0)
    return state


def reset_peak_memory() -> None:
    """Start Linux's peak-RSS counter (VmHWM) afresh; without it, ``peak_rss_mb`` counts from process start."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_memory_mb() -> float:
    try:
        status = Path("/proc/self/status").read_text()
        return int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_frames(results, warmup: int, totals: dict, warm: list | None = None) -> tuple[list[float], list]:
    """Iterate ``results`` (each yielding boolean masks), timing each; stage totals restart after warm-up, when
    ``warm`` (if given) gets what compiling had cost by then."""
    times, masks = [], []
    t0 = time.perf_counter()
    for m in results:
        masks.append(m)
        t1 = time.perf_counter()
        times.append(t1 - t0)
        t0 = t1
        if len(times) == warmup:
            totals.clear()
            if warm is not None:
                from vos.model.compiled import compile_stats

                warm.append(compile_stats())
    return times[warmup:], masks


def vos_model(config: str, size: int):
    from vos.model.config import get_config
    from vos.weights.checkpoint import build_model

    return build_model(get_config(config).replace(image_size=size), weights(config, size))


def clicked_predictor(model, folder: Path, objects: int, precision: str):
    """vos's offline predictor on ``folder`` with one click for each of ``objects`` objects on frame 0."""
    from vos import TrackerSettings, VideoPredictor

    predictor = VideoPredictor(model, folder, TrackerSettings(precision=precision))
    h, w = predictor.video_size
    for i, (x, y) in enumerate(clicks(objects, w, h)):
        predictor.add_points(0, i + 1, [[x, y]])
    return predictor


def run_vos(config: str, size: int, objects: int, folder: Path, warmup: int, mode: str) -> dict:
    """vos in ``mode``: a precision, ``+compile`` for the compiled model (it compiles during the warm-up)."""
    from vos.model.compiled import compile_model, compile_stats

    precision, _, compiled = mode.partition("+")
    model = vos_model(config, size)
    if compiled:
        compile_model(model)
    totals: dict[str, float] = defaultdict(float)
    time_stages(model, totals)
    reset_peak_memory()
    warm: list = []
    predictor = clicked_predictor(model, folder, objects, precision)
    timed, masks = timed_frames((r.masks for r in predictor.propagate(0)), warmup, totals, warm)
    out = {"seconds_per_frame": sum(timed) / len(timed), "masks": masks,
           "stages_ms": {k: 1000 * v / len(timed) for k, v in totals.items()}}
    if compiled:
        out.update(warmup_compile=vars(warm[0]), timed_compile=vars(compile_stats() - warm[0]))
    return out


OFFICIAL_STAGES = {"image encoder": "image_encoder", "memory attention": "memory_attention",
                   "decoder": "sam_mask_decoder", "memory encoder": "memory_encoder"}


EFFICIENT = {"edgetam", *(f"efficienttam_{t}{v}" for t in ("ti", "s") for v in ("", "_1", "_2", "_512x512"))}


def official_video_predictor(config: str, size: int):
    """The official video predictor of ``config`` at ``size`` (random weights, loaded next): ``sam2`` 1.1.0
    for SAM 2.1, the EdgeTAM and EfficientTAM oracles of the tests (``.oracles/``) for those."""
    if config in YAML:
        from sam2.build_sam import build_sam2_video_predictor

        return build_sam2_video_predictor(
            f"configs/sam2.1/sam2.1_hiera_{YAML[config]}.yaml", None, device="cpu",
            hydra_overrides_extra=[f"++model.image_size={size}"], apply_postprocessing=False,
        )
    sys.path.insert(0, str(ROOT / "tests"))
    if config == "edgetam":
        from edgetam_oracle import build_edgetam

        return build_edgetam(size, video=True)
    from efficienttam_oracle import build_efficienttam

    trunk, _, variant = config.removeprefix("efficienttam_").partition("_")
    return build_efficienttam(trunk, "" if variant in ("", "512x512") else f"_{variant}", size, video=True)


def run_official(config: str, size: int, objects: int, folder: Path, warmup: int, precision: str) -> dict:
    predictor = official_video_predictor(config, size)
    predictor.load_state_dict(weights(config, size))
    totals: dict[str, float] = defaultdict(float)
    for stage, name in OFFICIAL_STAGES.items():
        module = getattr(predictor, name)

        def timed(*args, _forward=module.forward, _stage=stage, **kwargs):
            t0 = time.perf_counter()
            out = _forward(*args, **kwargs)
            totals[_stage] += time.perf_counter() - t0
            return out

        module.forward = timed
    reset_peak_memory()
    with torch.inference_mode():
        state = predictor.init_state(str(folder))
        h, w = state["video_height"], state["video_width"]
        # The forks predate SAM 2.1, where add_new_points became add_new_points_or_box.
        add = getattr(predictor, "add_new_points_or_box", None) or predictor.add_new_points
        for i, (x, y) in enumerate(clicks(objects, w, h)):
            add(state, 0, i + 1, points=[[x, y]], labels=[1])
        results = ((m[:, 0] > 0).numpy() for _, _, m in predictor.propagate_in_video(state))
        timed, masks = timed_frames(results, warmup, totals)
    return {"seconds_per_frame": sum(timed) / len(timed), "masks": masks,
            "stages_ms": {k: 1000 * v / len(timed) for k, v in totals.items()}}


FLOP_STAGES = {"ImageEncoder": "image encoder", "MemoryAttention": "memory attention",
               "MaskDecoder": "decoder", "MemoryEncoder": "memory encoder"}


def _count_cpu_attention() -> None:
    """PyTorch's FLOP counter knows the GPU attention kernels but not the CPU one that
    ``scaled_dot_product_attention`` runs here: uncounted, memory attention (most of a frame at 1024 px) would
    count for almost nothing and the floor would be far too low."""
    from torch.utils.flop_counter import flop_registry, register_flop_formula, sdpa_flop_count

    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    if op in flop_registry:
        return

    @register_flop_formula(op)
    def _(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
        return sdpa_flop_count(query_shape, key_shape, value_shape)


def count_flops(config: str, size: int, objects: int, folder: Path, warmup: int) -> dict:
    """Floating-point operations of one tracked frame once the bank is full (frame ``warmup``), in all and
    per stage, counted by PyTorch's FLOP counter on vos's float32 path (the official implementation does the
    same arithmetic: exact mode's masks are its masks)."""
    from torch.utils.flop_counter import FlopCounterMode

    from vos.model.kernels import use_packed_kernels

    # The counter sees aten's matrix products, not oneDNN's packed ones: same arithmetic, counted.
    model = use_packed_kernels(vos_model(config, size), False)
    # The counter's module tracker hooks autograd for inputs that require gradients: a parameter fed to a
    # submodule (EdgeTAM's perceiver latents) has no autograd node under inference mode.
    model.requires_grad_(False)
    frames = clicked_predictor(model, folder, objects, "float32").propagate(0)
    for _ in range(warmup):
        next(frames)
    _count_cpu_attention()
    counter = FlopCounterMode(display=False, depth=1)
    with counter:
        next(frames)
    by_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    return {"total": counter.get_total_flops(), "stages": {FLOP_STAGES[k]: by_module.get(k, 0) for k in FLOP_STAGES}}


def matmul_ceiling(dtype: torch.dtype, n: int = 2048, repeats: int = 8) -> float:
    """GFLOP/s of one ``n x n`` matrix product on this machine (the best of ``repeats``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def mask_iou(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """J (IoU) per frame and object of two lists of boolean ``(N, H, W)`` masks (1 where both are empty)."""
    from evaluation.metrics import region_similarity

    a, b = np.concatenate(a), np.concatenate(b)
    return region_similarity(a, b)


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    job = json.loads(args.worker)
    # Every worker measures the ceiling first: this VM's speed drifts, and the floor uses the best seen.
    ceiling = {"float32": matmul_ceiling(torch.float32), "bfloat16": matmul_ceiling(torch.bfloat16)}
    if job["tool"] == "flops":
        with tempfile.TemporaryDirectory() as tmp:
            out = count_flops(job["config"], job["size"], job["objects"], frames_dir(tmp, job["warmup"] + 1), job["warmup"])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            folder = frames_dir(tmp, job["frames"])
            run = run_official if job["tool"] == "official" else run_vos
            out = run(job["config"], job["size"], job["objects"], folder, job["warmup"], job["tool"])
        np.savez_compressed(job["masks"], *out.pop("masks"))
    out["peak_rss_mb"] = peak_memory_mb()
    out["ceiling_gflops"] = ceiling
    print("RESULT " + json.dumps(out))


def spawn(args: argparse.Namespace, job: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--worker", json.dumps(job)],
                          capture_output=True, text=True, cwd=ROOT)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode or not line:
        if job["tool"] != "official":
            raise SystemExit(f"{job} failed:\n{proc.stderr[-2000:]}")
        # An official implementation that cannot run a case is a result too: its last error line is kept.
        errors = [l for l in proc.stderr.splitlines() if l and not l.startswith(" ")]
        print(f"{job} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return {"error": errors[-1] if errors else f"exit status {proc.returncode}"}
    return json.loads(line[0][7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["sam2.1_hiera_tiny"], choices=sorted({*YAML, *EFFICIENT}))
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"],
                        help="vos modes to run: float32, bfloat16, and either with +compile (load_model(compile=True))")
    parser.add_argument("--frames", type=int, default=13)
    parser.add_argument("--warmup", type=int, default=9)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    ceilings = []
    tools = ["official"] + args.precisions
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for config in args.configs:
            for size in args.sizes:
                for objects in args.objects:
                    row = {"config": config, "size": size, "objects": objects}
                    row["flops"] = spawn(args, dict(tool="flops", config=config, size=size, objects=objects, warmup=args.warmup))
                    ceilings.append(row["flops"]["ceiling_gflops"])
                    masks = {}
                    for tool in tools:
                        masks[tool] = f"{tmp}/{tool}.npz"
                        job = dict(tool=tool, config=config, size=size, objects=objects, frames=args.frames,
                                   warmup=args.warmup, masks=masks[tool])
                        row[tool] = spawn(args, job)
                        if "error" in row[tool]:
                            continue
                        ceilings.append(row[tool]["ceiling_gflops"])
                        if tool != "official" and "error" not in row["official"]:
                            row[tool]["speedup"] = row["official"]["seconds_per_frame"] / row[tool]["seconds_per_frame"]
                    loaded = {t: list(np.load(m).values()) for t, m in masks.items() if "error" not in row[t]}
                    for tool, reference in (("float32", "official"), ("bfloat16", "float32"),
                                            ("float32+compile", "float32"), ("bfloat16+compile", "bfloat16")):
                        if tool in loaded and reference in loaded:
                            iou = mask_iou(loaded[tool], loaded[reference])
                            row[tool]["iou_vs_" + reference] = {"min": float(iou.min()), "mean": float(iou.mean())}
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    ceiling = {p: max(c[p] for c in ceilings) for p in ("float32", "bfloat16")}
    for row in rows:
        row["floor_s"] = {p: row["flops"]["total"] / (ceiling[p] * 1e9) for p in ceiling}
        if "error" not in row["official"]:
            row["best_speedup"] = {p: row["official"]["seconds_per_frame"] / row["floor_s"][p] for p in ceiling}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed_vs_official.json").write_text(
        json.dumps({"command": command(), "threads": args.threads, "ceiling_gflops": ceiling, "rows": rows}, indent=1))
    (args.out / "speed_vs_official.md").write_text(report(args, ceiling, rows, tools))
    print(report(args, ceiling, rows, tools))


def command() -> str:
    return " ".join(["python benchmarks/speed_vs_official.py", *sys.argv[1:]])


def report(args: argparse.Namespace, ceiling: dict, rows: list[dict], tools: list[str]) -> str:
    stages = list(STAGES)
    modes = [t for t in tools if t != "official"]
    lines = [
        "# vos against the official predictors on CPU (same weights, same frames, one run)",
        "",
        f"bedroom.mp4 (960x540), {args.frames - args.warmup} timed frames after {args.warmup} warm-up (memory bank full), "
        f"{args.threads} threads, torch {torch.__version__}, {platform.processor() or platform.machine()}. "
        f"Matrix-multiply ceiling: {ceiling['float32']:.0f} GFLOP/s float32, {ceiling['bfloat16']:.0f} GFLOP/s "
        "bfloat16 (the best of the measurements every worker of this run makes first). Floor: the frame's counted FLOPs at that ceiling; best possible "
        "speed-up: official time over the floor. Exact = float32; fast = bfloat16 autocast.",
        "",
        f"Command: `{command()}`.",
        "",
        "| config | size | objects | official s/frame | "
        + " | ".join(f"{m} s/frame | {m} speed-up" for m in modes)
        + " | exact masks vs official (IoU min) | fast masks vs exact (IoU min / mean) | GFLOP per frame | floor s (fp32 / bf16) | best possible speed-up (fp32 / bf16) | peak MB ("
        + " / ".join(tools) + ") |",
        "|---|---|---|---|" + "---|---|" * len(modes) + "---|---|---|---|---|---|",
    ]
    for r in rows:
        failed = "error" in r["official"]
        official = "fails" if failed else f"{r['official']['seconds_per_frame']:.2f}"
        cells = [r["config"], str(r["size"]), str(r["objects"]), official]
        for m in modes:
            cells += [f"{r[m]['seconds_per_frame']:.2f}", "-" if failed else f"**{r[m]['speedup']:.2f}x**"]
        exact = r.get("float32", {}).get("iou_vs_official")
        fast = r.get("bfloat16", {}).get("iou_vs_float32")
        cells.append(f"{exact['min']:.3f}" if exact else "-")
        cells.append(f"{fast['min']:.3f} / {fast['mean']:.3f}" if fast else "-")
        cells.append(f"{r['flops']['total'] / 1e9:.0f}")
        cells.append(f"{r['floor_s']['float32']:.2f} / {r['floor_s']['bfloat16']:.2f}")
        cells.append("-" if failed else f"{r['best_speedup']['float32']:.2f}x / {r['best_speedup']['bfloat16']:.2f}x")
        cells.append(" / ".join("-" if "error" in r[t] else f"{r[t]['peak_rss_mb']:.0f}" for t in tools))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Time per stage (ms per frame); floor: the stage's counted FLOPs at the float32 / bfloat16 ceiling:", "",
              "| config | size | objects | tool | " + " | ".join(stages) + " |",
              "|---|---|---|---|" + "---|" * len(stages)]
    for r in rows:
        for t in tools:
            if "error" in r[t]:
                continue
            lines.append(f"| {r['config']} | {r['size']} | {r['objects']} | {t} | "
                         + " | ".join(f"{r[t]['stages_ms'].get(s, 0):.0f}" for s in stages) + " |")
        floors = [" / ".join(f"{1000 * r['flops']['stages'][s] / (ceiling[p] * 1e9):.0f}" for p in ("float32", "bfloat16"))
                  for s in stages]
        lines.append(f"| {r['config']} | {r['size']} | {r['objects']} | floor | " + " | ".join(floors) + " |")
    for config in args.configs:
        for size in args.sizes:
            by = {r["objects"]: r for r in rows if r["config"] == config and r["size"] == size}
            if 1 in by and 8 in by:
                ratios = ", ".join(f"{t} {by[8][t]['seconds_per_frame'] / by[1][t]['seconds_per_frame']:.2f}x" for t in tools
                                   if "error" not in by[8][t] and "error" not in by[1][t])
                lines += ["", f"{config} at {size}: 8 objects cost, relative to one object: {ratios}."]
    for r in rows:
        for m in modes:
            if "warmup_compile" in r[m]:
                w, t = r[m]["warmup_compile"], r[m]["timed_compile"]
                eager = r[m].get("iou_vs_" + m.partition("+")[0])
                lines += ["", f"{r['config']} at {r['size']} px, {r['objects']} objects, {m}: {w['graphs']} graphs "
                          f"compiled in {w['seconds']:.0f} s during the warm-up, {t['graphs']} during the timed frames"
                          + (f"; masks vs eager: IoU min {eager['min']:.3f}, mean {eager['mean']:.3f}." if eager else ".")]
    failures = [f"{r['config']} at {r['size']} px with {r['objects']} objects: the official code fails "
                f"(`{r['official']['error']}`)." for r in rows if "error" in r["official"]]
    if failures:
        lines += ["", *failures]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
