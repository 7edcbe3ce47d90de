"""Live tracking for 10,000+ frames: memory and time per frame stay flat, next to the official predictor.

Both run sam2.1_hiera_tiny with the same random weights at a small input size on frames of
``../shared/data/videos/bedroom.mp4`` played in a loop. vos's live tracker runs the whole length; the
official video predictor (which preloads every frame and keeps every frame's output) runs as far as
``--official-frames``. Writes ``benchmarks/results/live_memory.{json,md}``.

    python benchmarks/live_memory.py --frames 10000 --official-frames 2000
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from oracle_free import random_state_dict, set_presence  # noqa: E402

from streams import open_video  # noqa: E402
from vos.model.config import get_config  # noqa: E402
from vos.model.sam2 import SAM2Model  # noqa: E402
from vos.tracking.live_tracker import LiveTracker  # noqa: E402
from vos.tracking.prompts import Prompt  # noqa: E402

CONFIG = "sam2.1_hiera_tiny"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tensor_mb(obj) -> float:
    """Bytes of every tensor reachable through dicts and lists."""
    seen, total, stack = set(), 0, [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, torch.Tensor):
            if x.data_ptr() not in seen:
                seen.add(x.data_ptr())
                total += x.numel() * x.element_size()
        elif isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, (list, tuple)):
            stack.extend(x)
    return total / 2**20


def load_frames(size: tuple[int, int]) -> list[np.ndarray]:
    video = open_video(ROOT.parent / "shared" / "data" / "videos" / "bedroom.mp4")
    return [cv2.resize(f.image, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in video]


def summarise(times: list[float], window: int) -> dict:
    return {
        "first_ms": 1000 * statistics.median(times[:window]),
        "last_ms": 1000 * statistics.median(times[-window:]),
    }


def run_vos(model, frames, total, window):
    tracker = LiveTracker(model)
    prompt = {1: Prompt.make(points=[[frames[0].shape[1] * 0.5, frames[0].shape[0] * 0.5]])}
    times, memory, rss = [], [], []
    for i in tqdm(range(total), desc="vos live tracker"):
        t0 = time.perf_counter()
        tracker.step(frames[i % len(frames)], prompt if i == 0 else None)
        times.append(time.perf_counter() - t0)
        if i % 100 == 0 or i == total - 1:
            memory.append((i, tracker.memory_bytes() / 2**20))
            rss.append((i, rss_mb()))
    return {"frames": total, **summarise(times, window), "state_mb": memory, "rss_mb": rss}


def run_official(state_dict, frames, total, size, window):
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        "configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu",
        hydra_overrides_extra=[f"++model.image_size={size}"], apply_postprocessing=False,
    )
    predictor.load_state_dict(state_dict)
    set_presence(predictor, 2.0)
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(total):
            cv2.imwrite(f"{tmp}/{i:05d}.jpg", cv2.cvtColor(frames[i % len(frames)], cv2.COLOR_RGB2BGR))
        rss_before = rss_mb()
        with torch.inference_mode():
            state = predictor.init_state(tmp)
            h, w = frames[0].shape[:2]
            predictor.add_new_points_or_box(state, 0, 1, points=[[w * 0.5, h * 0.5]], labels=[1])
            times, memory, rss = [], [], []
            t0 = time.perf_counter()
            for i, _ in enumerate(predictor.propagate_in_video(state)):
                t1 = time.perf_counter()
                times.append(t1 - t0)
                t0 = t1
                if i % 100 == 0 or i == total - 1:
                    memory.append((i, tensor_mb(state["output_dict_per_obj"]) + tensor_mb(state["images"])))
                    rss.append((i, rss_mb()))
    return {"frames": total, **summarise(times, window), "state_mb": memory, "rss_mb": rss, "rss_before_mb": rss_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=10000)
    parser.add_argument("--official-frames", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--window", type=int, default=500, help="frames in the start and end medians")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    frames = load_frames((72, 128))
    model = SAM2Model(get_config(CONFIG).replace(image_size=args.image_size)).eval()
    state_dict = random_state_dict(model.state_dict(), seed=1)
    model.load_state_dict(state_dict)
    set_presence(model, 2.0)
    results = {
        "config": CONFIG, "image_size": args.image_size, "frame_size": [72, 128], "threads": torch.get_num_threads(),
        "window": args.window,
        "vos": run_vos(model, frames, args.frames, args.window),
    }
    if args.official_frames:
        results["official"] = run_official(state_dict, frames, args.official_frames, args.image_size, args.window)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "live_memory.json").write_text(json.dumps(results, indent=1))
    (args.out / "live_memory.md").write_text(report(results))
    print(report(results))


def report(r: dict) -> str:
    lines = [
        f"# Live tracking over {r['vos']['frames']} frames: {r['config']} at {r['image_size']}px, "
        f"{r['threads']} threads, one object",
        "",
        f"| predictor | frames | ms/frame, first {r['window']} | ms/frame, last {r['window']} | state MB at start "
        "| state MB at end | RSS MB at start | RSS MB at end |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("vos", "official"):
        if name not in r:
            continue
        x = r[name]
        lines.append(
            f"| {name} | {x['frames']} | {x['first_ms']:.1f} | {x['last_ms']:.1f} | {x['state_mb'][0][1]:.2f} | "
            f"{x['state_mb'][-1][1]:.2f} | {x['rss_mb'][0][1]:.0f} | {x['rss_mb'][-1][1]:.0f} |"
        )
    lines += [
        "",
        "State: vos counts its memory banks; the official predictor its per-frame outputs plus the preloaded",
        "frames. RSS is the whole process (both models and the Python runtime included).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
