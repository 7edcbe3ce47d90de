"""Several live sources: one batched process (``vos live --sources``) against the same number of separate
``vos live`` processes on the same cores, side by side in one run; and the batched process's memory over a
long run.

Serves a loopback RTSP stream with the tests' GStreamer server (``tests/rtsp_server.py``, 320x240 H.264 at
30 fps; one shared encoder, each source its own RTSP client and decoder) and, for each count of sources,
runs (a) one process tracking all of them with :func:`vos.jobs.live_sources.run_live_sources` (each step the
newest frame of every source, one image-encoder batch), and (b) that many processes, each tracking one
source with :func:`vos.jobs.live.run_live`; every process on the PyTorch threads ``vos live`` would choose
(from the cores free when it starts), or ``--threads``. Every process loads its model and opens its streams first, then all start together, track one
object a source for ``--seconds`` and stop. Total frames/s is every source's tracked frames over the
tracking time; latency is capture (decode) to mask, over the frames of all sources.

The memory run tracks ``--memory-sources`` sources in one batched process until each has ``--memory-frames``
frames, sampling the process's resident memory and the memory banks' bytes each second.

    python benchmarks/live_sources.py [--counts 1 2 4] [--seconds 20] [--models embedded]
        [--separate-threads 1] [--memory-frames 1000] [--memory-sources 2]

Writes ``benchmarks/results/live_sources.{json,md}`` (the comparison; ``--counts`` with no number skips it) and
``benchmarks/results/live_sources_memory.{json,md,png}`` (the memory run; ``--memory-frames 0`` skips it).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# benchmarks/, the script's folder, is on sys.path
from live_latency import start_rtsp_server
from threads_under_load import cpu_name

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"embedded": "the embedded vos model", "hiera_t-512": "sam2.1_hiera_tiny at 512 px (random weights)"}


def load(name: str):
    import vos
    from vos.model.config import get_config
    from vos.weights.checkpoint import build_model

    return vos.load_model() if name == "embedded" else build_model(get_config("sam2.1_hiera_tiny").replace(image_size=512))


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------- one process (run as a subprocess)
def worker(spec: dict) -> dict:
    """Load the model, open the streams, say "ready", wait for the start time on stdin, track, report."""
    from streams import NetworkStream
    from vos.jobs.live import run_live
    from vos.jobs.live_sources import run_live_sources
    from vos.model.device import use_cpu_threads
    from vos.tracking.prompts import FramePrompt, Prompt

    threads = use_cpu_threads(spec["threads"]).threads  # None: what vos live chooses, from the cores free now
    model = load(spec["model"])
    streams = [NetworkStream(url) for url in spec["urls"]]
    prompts = [[FramePrompt(0, 1, Prompt.make(points=[[s.size[1] / 2, s.size[0] / 2]]))] for s in streams]
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    for s in streams:  # frames decoded while waiting are not this run's
        s.read(timeout=10)
    samples = []
    cpu_before = _cpu_seconds()

    def sample(_line: str) -> None:
        samples.append({"t": time.time() - start_at, "rss": rss_bytes()})

    if spec["batched"]:
        report = run_live_sources(model, [(f"source {i}", s, p, None) for i, (s, p) in enumerate(zip(streams, prompts), 1)],
                                  max_seconds=spec.get("seconds"), max_frames=spec.get("frames"), log=sample)
        sources, seconds = report.sources, report.seconds
        banks = report.memory_bytes
    else:
        one = run_live(model, streams[0], prompts[0], show=False, log=sample,
                       max_frames=_frames_in(spec["seconds"], start_at))
        sources, seconds, banks = [one], one.seconds, []
    cpu = _cpu_seconds() - cpu_before
    for s in streams:
        s.close()
    return {"cpu_seconds": cpu, "frames": [r.frames for r in sources], "latencies": [lat for r in sources for lat in r.latencies],
            "dropped": [r.dropped for r in sources], "seconds": seconds, "samples": samples, "banks": banks,
            "errors": [getattr(r, "error", None) for r in sources], "threads": threads}


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (tracking and stream decoding) together."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _frames_in(seconds: float, start_at: float) -> int | None:
    """run_live stops on a frame count: a watchdog thread interrupts it at the end of the time instead."""
    import _thread
    import threading

    threading.Timer(max(0.0, start_at + seconds - time.time()), _thread.interrupt_main).start()
    return None


# ---------------------------------------------------------------------- the comparison
def launch(specs: list[dict], margin: float = 2.0) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    env.pop("OMP_NUM_THREADS", None)
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(spec)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env) for spec in specs]
    for p in procs:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"a worker did not start: {line!r}")
    start_at = time.time() + margin
    for p in procs:
        p.stdin.write(f"{start_at}\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"a worker failed (status {p.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def summary(results: list[dict], seconds: float) -> dict:
    frames = [f for r in results for f in r["frames"]]
    lat = np.array([x for r in results for x in r["latencies"]]) * 1000
    return {"total_fps": sum(frames) / seconds, "frames_per_source": frames,
            "frames_per_cpu_second": sum(frames) / sum(r["cpu_seconds"] for r in results),
            "latency_ms_median": float(np.median(lat)) if lat.size else None,
            "latency_ms_p95": float(np.percentile(lat, 95)) if lat.size else None,
            "dropped": [d for r in results for d in r["dropped"]],
            "errors": [e for r in results for e in r["errors"] if e]}


def compare(model: str, url: str, count: int, seconds: float, threads: int | None,
            separate_threads: int | None) -> dict:
    load_before = os.getloadavg()
    batched = launch([{"model": model, "threads": threads, "urls": [url] * count, "batched": True, "seconds": seconds}])
    separate = launch([{"model": model, "threads": separate_threads or threads, "urls": [url], "batched": False,
                        "seconds": seconds}
                       for _ in range(count)])
    return {"model": model, "sources": count, "batched": summary(batched, seconds),
            "separate": summary(separate, seconds), "batched_threads": batched[0]["threads"],
            "separate_threads": [r["threads"] for r in separate], "load_before": load_before,
            "load_after": os.getloadavg()}


def memory_run(model: str, url: str, sources: int, frames: int, threads: int | None) -> dict:
    [result] = launch([{"model": model, "threads": threads, "urls": [url] * sources, "batched": True, "frames": frames}])
    rss = [s["rss"] for s in result["samples"]]
    third = max(1, len(rss) // 3)
    return {"model": model, "sources": sources, "frames_per_source": result["frames"], "seconds": result["seconds"],
            "rss_mb_first_third_max": max(rss[:third]) / 2**20, "rss_mb_last_third_max": max(rss[-third:]) / 2**20,
            "rss_mb": [r / 2**20 for r in rss], "bank_bytes_first": result["banks"][:1], "bank_bytes_last": result["banks"][-1:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--models", nargs="+", default=["embedded"], choices=list(MODELS))
    parser.add_argument("--memory-frames", type=int, default=1000, help="0: no memory run")
    parser.add_argument("--memory-sources", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None,
                        help="PyTorch threads of every process (default: what vos chooses, from the cores free)")
    parser.add_argument("--separate-threads", type=int, default=None,
                        help="PyTorch threads of each separate process (default: as --threads); 1 gives the separate "
                        "processes their best case on a busy machine, without the race of each choosing from the "
                        "cores free when it starts")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    server, url = start_rtsp_server(30, 320, 240)
    try:
        rows = []
        for model in args.models:
            for count in args.counts:
                rows.append(compare(model, url, count, args.seconds, args.threads, args.separate_threads))
                print(json.dumps(rows[-1]), flush=True)
        memory = memory_run(args.models[0], url, args.memory_sources, args.memory_frames, args.threads) \
            if args.memory_frames else None
    finally:
        server.kill()
    meta = {"cpu": cpu_name(), "cores": os.cpu_count(), "seconds": args.seconds, "threads": args.threads,
            "separate_threads": args.separate_threads,
            "stream": "320x240 H.264 at 30 fps, RTSP over TCP on loopback (one server, a client per source)"}
    args.out.mkdir(parents=True, exist_ok=True)
    if rows:
        write(args, meta, rows)
    if memory:
        write_memory(args.out, meta, memory)


def write(args, meta: dict, rows: list[dict]) -> None:
    (args.out / "live_sources.json").write_text(json.dumps({**meta, "runs": rows}, indent=1))
    lines = [
        "# Several live sources: one batched process against separate processes",
        "",
        f"{meta['cpu']}, {meta['cores']} cores, {meta['stream']}; {args.seconds:.0f} s of tracking per run, one "
        "object a source, all processes of a run started together after loading. Threads: PyTorch threads of the "
        "batched process (its sources stepped in as many groups side by side) / of each separate one ("
        + (f"{args.threads} set" if args.threads else "vos's choice from the cores free at start, as vos live makes it")
        + (f"; {args.separate_threads} set for the separate ones" if args.separate_threads else "")
        + "). Latency: frame decoded -> mask ready, over all "
        "sources' frames. Load average (1 min) before/after each pair of runs: the machine is shared.",
        "",
        "| model | sources | batched: total fps | separate: total fps | batched / separate | frames per CPU-second, batched / separate | latency median / p95 (ms), batched | separate | threads | load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, s = r["batched"], r["separate"]
        lines.append(f"| {MODELS[r['model']]} | {r['sources']} | {b['total_fps']:.2f} | {s['total_fps']:.2f} | "
                     f"{b['total_fps'] / s['total_fps']:.2f}x | "
                     f"{b['frames_per_cpu_second']:.2f} / {s['frames_per_cpu_second']:.2f} | {b['latency_ms_median']:.0f} / {b['latency_ms_p95']:.0f} | "
                     f"{s['latency_ms_median']:.0f} / {s['latency_ms_p95']:.0f} | "
                     f"{r['batched_threads']} / {','.join(map(str, r['separate_threads']))} | "
                     f"{r['load_before'][0]:.1f} / {r['load_after'][0]:.1f} |")
    (args.out / "live_sources.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_memory(out: Path, meta: dict, memory: dict) -> None:
    """The memory run: its numbers and the resident memory over time, as a plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (out / "live_sources_memory.json").write_text(json.dumps({**meta, "memory": memory}, indent=1))
    seconds = np.linspace(0, memory["seconds"], len(memory["rss_mb"]))
    frames = ", ".join(f"{n:,}" for n in sorted(set(memory["frames_per_source"])))
    banks = [f"{n:,}" for n in memory["bank_bytes_first"] + memory["bank_bytes_last"]]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    ax.plot(seconds / 60, memory["rss_mb"], lw=1)
    ax.set_xlabel("minutes of tracking")
    ax.set_ylabel("resident memory (MB)")
    ax.set_ylim(0, max(memory["rss_mb"]) * 1.15)
    ax.set_title(f"{memory['sources']} live sources in one process, {frames} frames each",
                 fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "live_sources_memory.png")
    threads = f"{meta['threads']} PyTorch thread(s)" if meta["threads"] else "vos's choice of threads"
    lines = [
        "# Memory of one batched process tracking several live sources for a long time",
        "",
        f"{meta['cpu']}, {meta['cores']} cores, {threads}; {meta['stream']}; one object a source. "
        f"{memory['sources']} sources in one batched process, {MODELS[memory['model']]}, "
        f"{frames} frames per source in {memory['seconds']:.0f} s. Resident memory sampled "
        "each second ([plot](live_sources_memory.png)):",
        "",
        "| | MB |",
        "|---|---|",
        f"| largest sample, first third of the run | {memory['rss_mb_first_third_max']:.0f} |",
        f"| largest sample, last third of the run | {memory['rss_mb_last_third_max']:.0f} |",
        f"| largest sample, whole run | {max(memory['rss_mb']):.0f} |",
        "",
        f"Memory banks, every source's together: {banks[0]} bytes at the first report, {banks[-1]} at the last.",
    ]
    (out / "live_sources_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
