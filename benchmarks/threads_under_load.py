"""``vos track`` on a busy machine: PyTorch's default thread count against the count vos chooses from the free
cores and against one thread, side by side, with CPU-bound background processes sharing the cores.

Tracks one click through the first 30 frames of ``../shared/data/videos/bedroom.mp4`` (960x540, written as a
JPEG folder once) with the embedded model; each round runs the three settings in turn, so that they meet the
same background. Times are of the whole command, start-up included, as a user waits for it. The masks of
each setting are compared with those of one thread. Writes ``benchmarks/results/threads_under_load.{json,md}``.

    python benchmarks/threads_under_load.py [--frames 30] [--burners 1] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "videos" / "bedroom.mp4"
CLICK = "395,220"  # on the bed, as in app_latency.py


def write_clip(folder: Path, frames: int) -> Path:
    sys.path.insert(0, str(ROOT))
    from streams import VideoFile

    folder.mkdir(parents=True, exist_ok=True)
    with VideoFile(VIDEO) as video:
        for i in range(min(frames, len(video))):
            cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(video[i].image, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def torch_default_threads() -> int:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout)


def chosen_threads(env: dict[str, str]) -> int:
    """The count vos chooses now (asked just before the run, as the run itself does at its start)."""
    code = "from vos.model.device import use_cpu_threads; print(use_cpu_threads().threads)"
    return int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout)


def run_track(clip: Path, out: Path, setting: str, default: int) -> tuple[float, int]:
    """Seconds the command took and the threads it ran on (for vos's choice: what it chose a moment before)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT)
    extra: list[str] = []
    threads = {"default": default, "one": 1}.get(setting) or chosen_threads(env)
    if setting == "default":
        env["OMP_NUM_THREADS"] = str(default)  # what PyTorch does on its own, before vos chose
    elif setting == "one":
        extra = ["--threads", "1"]
    command = [sys.executable, "-m", "vos", "track", str(clip), "--point", CLICK, "--out", str(out), "--overwrite",
               "--no-video", *extra]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    return seconds, threads


def masks(folder: Path) -> np.ndarray:
    return np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((folder / "masks").glob("*.png"))])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--burners", type=int, default=1, help="CPU-bound background processes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    settings = {"default": "PyTorch's default", "chosen": "vos's choice (free cores)", "one": "--threads 1"}
    default = torch_default_threads()
    times: dict[str, list[float]] = {s: [] for s in settings}
    threads: dict[str, list[int]] = {s: [] for s in settings}
    agree: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = write_clip(Path(tmp) / "clip", args.frames)
        load_before = os.getloadavg()
        burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners)]
        try:
            time.sleep(2)
            for _ in range(args.rounds):
                for setting in settings:
                    seconds, n = run_track(clip, Path(tmp) / setting, setting, default)
                    times[setting].append(seconds)
                    threads[setting].append(n)
                    print(f"{setting}: {seconds:.1f} s on {n} thread(s)", flush=True)
            load_during = os.getloadavg()
        finally:
            for b in burners:
                b.kill()
                b.wait()
        reference = masks(Path(tmp) / "one")
        for setting in settings:
            agree[setting] = float((masks(Path(tmp) / setting) == reference).mean())
    rows = {s: {"median_s": float(np.median(v)), "min_s": float(np.min(v)), "max_s": float(np.max(v)),
                "threads": sorted(set(threads[s])), "pixels_as_one_thread": agree[s]} for s, v in times.items()}
    result = {
        "command": "python benchmarks/threads_under_load.py " + " ".join(sys.argv[1:]),
        "clip": f"bedroom.mp4, first {args.frames} frames (960x540), one click, embedded model, masks only",
        "background": f"{args.burners} CPU-bound process(es) ('while True: pass') for the whole run",
        "cpu": cpu_name(), "cores": os.cpu_count(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_default_threads": default, "rounds": args.rounds, "rows": rows,
        "load_average_before_burners": load_before, "load_average_at_end": load_during,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "threads_under_load.json").write_text(json.dumps(result, indent=1) + "\n")
    one = rows["one"]["median_s"]
    lines = [f"# vos track on a busy machine: threads ({result['clip']})", "", f"`{result['command']}`", "",
             f"Background: {result['background']}, on top of the machine's own load (1/5/15-minute load average "
             f"{', '.join(f'{x:.1f}' for x in load_before)} before the burners started, "
             f"{', '.join(f'{x:.1f}' for x in load_during)} at the end).", "",
             "| threads | ran on | median | min | max | vs --threads 1 | mask pixels as with 1 thread |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {settings[s]} | {', '.join(map(str, r['threads']))} | {r['median_s']:.1f} s | {r['min_s']:.1f} s | "
              f"{r['max_s']:.1f} s | {r['median_s'] / one:.2f}x | {100 * r['pixels_as_one_thread']:.2f}% |"
              for s, r in rows.items()]
    avx = " (AVX2, no AVX-512)" if result["torch_cpu_capability"] == "AVX2" else ""
    lines += ["", f"Whole commands (start-up, model load and JPEG decoding included), {args.rounds} rounds, the three "
              "settings in turn in each round. 'PyTorch's default' is OMP_NUM_THREADS set to PyTorch's own count "
              f"({default}), which vos respects; 'vos's choice' sets nothing, so vos counts the busy cores at start-up.",
              "", f"CPU: {result['cpu']}, {result['cores']} cores; PyTorch's CPU capability "
              f"{result['torch_cpu_capability']}{avx}."]
    (out / "threads_under_load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
