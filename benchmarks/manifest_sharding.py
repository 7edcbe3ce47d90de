"""``vos track --manifest`` on many short clips: one process against ``torchrun --nproc-per-node 2``, side by
side, then a run killed in the middle and run again, which finishes only what was left.

The clips are the first ``--frames`` frames of the first ``--clips`` DAVIS 2016 train sequences (427x240,
``../shared/data/davis2016-train-240p``), copied as frame folders into a temporary folder, each prompted with
one click inside its first annotated mask (the pixel farthest from the mask's border). The embedded model
tracks them, writing masks and the overlay video as ``vos track`` does. Each round runs every configuration
in turn, so that they meet the same background load; times are of the whole command (start-up, model
loading and the summary included), as a user waits for it. Every configuration's outputs are compared byte
for byte with those of the first. Writes ``benchmarks/results/manifest_sharding.{json,md}``.

    python benchmarks/manifest_sharding.py [--clips 16] [--frames 12] [--rounds 2] [--kill-after 6]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from threads_under_load import cpu_name  # benchmarks/, the script's folder, is on sys.path

ROOT = Path(__file__).resolve().parents[1]
DAVIS = ROOT.parent / "shared" / "data" / "davis2016-train-240p"
SETTINGS = {
    "one": ("1 process, vos's choice of threads", ["-m", "vos"], []),
    "one-1": ("1 process, --threads 1", ["-m", "vos"], ["--threads", "1"]),
    "torchrun-2": ("torchrun --nproc-per-node 2, --threads 1 each",
                   ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "vos"],
                   ["--threads", "1"]),
}


def make_clips(folder: Path, clips: int, frames: int) -> list[dict]:
    """Frame folders of real clips and a click each: the manifest's entries (video paths absolute)."""
    names = sorted(p.name for p in (DAVIS / "JPEGImages" / "480p").iterdir() if p.is_dir())[:clips]
    entries = []
    for name in names:
        clip = folder / name
        clip.mkdir(parents=True)
        for f in sorted((DAVIS / "JPEGImages" / "480p" / name).glob("*.jpg"))[:frames]:
            shutil.copy(f, clip / f.name)
        mask = cv2.imread(str(DAVIS / "Annotations" / "480p" / name / "00000.png"), cv2.IMREAD_GRAYSCALE) > 0
        distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
        y, x = np.unravel_index(int(np.argmax(distance)), distance.shape)
        entries.append({"video": str(clip), "prompts": [{"frame": 0, "obj_id": 1, "points": [[int(x), int(y)]]}],
                        "out": f"out/{name}"})
    return entries


def write_manifest(run: Path, entries: list[dict]) -> Path:
    run.mkdir(parents=True)
    manifest = run / "clips.jsonl"
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return manifest


def command(setting: str, manifest: Path) -> list[str]:
    _, launcher, options = SETTINGS[setting]
    return [sys.executable, *launcher, "track", "--manifest", str(manifest), *options]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    return env


def run(setting: str, manifest: Path) -> dict:
    start = time.perf_counter()
    result = subprocess.run(command(setting, manifest), env=environment(), capture_output=True, text=True,
                            cwd=manifest.parent, check=False)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise RuntimeError(f"{' '.join(command(setting, manifest))} failed:\n{result.stdout[-2000:]}\n"
                           f"{result.stderr[-3000:]}")
    summary = json.loads(manifest.with_name("clips.summary.json").read_text())
    return {"seconds": seconds, "summary_seconds": summary["seconds"], "done": summary["done"],
            "skipped": summary["skipped"], "failed": summary["failed"], "load": os.getloadavg()}


def outputs(run_dir: Path) -> dict[str, bytes]:
    """Every output file of a run but the done.json markers (which hold times)."""
    out = run_dir / "out"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "done.json"}


def kill_and_resume(run_dir: Path, entries: list[dict], kill_after: int, setting: str) -> dict:
    """Start a run, kill it (SIGKILL) once ``kill_after`` entries are finished and another is under way, run
    the same command again; what each run did, from the markers and the second run's summary."""
    manifest = write_manifest(run_dir, entries)
    outs = [run_dir / e["out"] for e in entries]
    start = time.perf_counter()
    process = subprocess.Popen(command(setting, manifest), env=environment(), cwd=run_dir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        finished = [o for o in outs if (o / "done.json").exists()]
        underway = [o for o in outs if (o / ".vos-entry.json").exists() and not (o / "done.json").exists()]
        if len(finished) >= kill_after and any(any((o / "masks").glob("*.png")) for o in underway):
            break
        if process.poll() is not None:
            raise RuntimeError("the run ended before it could be killed: raise --clips or lower --kill-after")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_after = time.perf_counter() - start
    finished = [o.name for o in outs if (o / "done.json").exists()]
    partial = [o.name for o in outs if (o / ".vos-entry.json").exists() and not (o / "done.json").exists()]
    partial_masks = {o.name: len(list((o / "masks").glob("*.png"))) for o in outs if o.name in partial}
    second = run(setting, manifest)
    summary = json.loads(manifest.with_name("clips.summary.json").read_text())
    by_status = {s: [Path(e["out"]).name for e in summary["entries"] if e["status"] == s]
                 for s in ("done", "skipped", "failed")}
    return {"killed_after_s": killed_after, "finished_before_kill": finished, "partial_at_kill": partial_masks,
            "rerun": second, "rerun_done": by_status["done"], "rerun_skipped": by_status["skipped"],
            "rerun_failed": by_status["failed"],
            "only_the_rest_ran": sorted(by_status["skipped"]) == sorted(finished)
            and sorted(by_status["done"]) == sorted({o.name for o in outs} - set(finished))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kill-after", type=int, default=6, help="finished entries before the kill")
    args = parser.parse_args()
    import torch

    times: dict[str, list[dict]] = {s: [] for s in SETTINGS}
    identical: dict[str, bool] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        entries = make_clips(tmp / "clips", args.clips, args.frames)
        reference = None
        for r in range(args.rounds):
            for setting in SETTINGS:
                run_dir = tmp / f"{setting}-{r}"
                times[setting].append(run(setting, write_manifest(run_dir, entries)))
                print(f"round {r + 1}, {SETTINGS[setting][0]}: {times[setting][-1]['seconds']:.1f} s "
                      f"(load {times[setting][-1]['load'][0]:.1f})", flush=True)
                files = outputs(run_dir)
                reference = reference or files
                identical[setting] = identical.get(setting, True) and files == reference
                shutil.rmtree(run_dir / "out")
        resume = kill_and_resume(tmp / "killed", entries, args.kill_after, "one")
        resume["outputs_as_uninterrupted"] = outputs(tmp / "killed") == reference
        print(f"killed after {resume['killed_after_s']:.1f} s with {len(resume['finished_before_kill'])} entries "
              f"finished; the re-run did {len(resume['rerun_done'])} and skipped {len(resume['rerun_skipped'])} in "
              f"{resume['rerun']['seconds']:.1f} s", flush=True)
    load_after = os.getloadavg()

    rows = {s: {"median_s": float(np.median([t["seconds"] for t in v])),
                "min_s": float(np.min([t["seconds"] for t in v])), "max_s": float(np.max([t["seconds"] for t in v])),
                "median_summary_s": float(np.median([t["summary_seconds"] for t in v])),
                "load_1min": [round(t["load"][0], 1) for t in v], "outputs_identical": identical[s]}
            for s, v in times.items()}
    result = {
        "command": " ".join(["python benchmarks/manifest_sharding.py", *sys.argv[1:]]),
        "clips": f"{args.clips} clips: the first {args.frames} frames of the first {args.clips} DAVIS 2016 train "
                 "sequences (427x240 JPEG folders), one click each, embedded model, masks and overlay video",
        "cpu": cpu_name(), "cores": os.cpu_count(), "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "rounds": args.rounds,
        "load_average_before": load_before, "load_average_after": load_after, "rows": rows, "resume": resume,
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest_sharding.json").write_text(json.dumps(result, indent=1) + "\n")
    base = rows["one"]["median_s"]
    lines = [f"# vos track --manifest: one process against torchrun ({result['clips']})", "",
             f"`{result['command']}`", "",
             "| configuration | median | min | max | speed-up vs the first | summary's time (median) | "
             "1-min load after each round | outputs as the first configuration's |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {SETTINGS[s][0]} | {r['median_s']:.1f} s | {r['min_s']:.1f} s | {r['max_s']:.1f} s | "
              f"{base / r['median_s']:.2f}x | {r['median_summary_s']:.1f} s | "
              f"{', '.join(map(str, r['load_1min']))} | {'byte for byte' if r['outputs_identical'] else 'DIFFERENT'} |"
              for s, r in rows.items()]
    partial = ", ".join(f"{name} (masks on disk: {n})" for name, n in resume["partial_at_kill"].items())
    lines += ["", "## Killed in the middle, then run again", "",
              f"`{' '.join(['vos track --manifest clips.jsonl', *SETTINGS['one'][2]])}` was killed (SIGKILL) "
              f"{resume['killed_after_s']:.1f} s in, with {len(resume['finished_before_kill'])} entries finished "
              f"and {partial} under way. The same command again:", "",
              f"- skipped the {len(resume['rerun_skipped'])} finished entries, ran {len(resume['rerun_done'])} "
              f"(the one under way redone and those not started), failed {len(resume['rerun_failed'])}: "
              f"{'only what was left ran' if resume['only_the_rest_ran'] else 'NOT only what was left'};",
              f"- took {resume['rerun']['seconds']:.1f} s against {base:.1f} s for the whole manifest;",
              f"- its outputs are, byte for byte, {'those' if resume['outputs_as_uninterrupted'] else 'NOT those'} "
              "of an uninterrupted run.", "",
              f"Whole commands (start-up, model loading in each process, the summary), {args.rounds} round(s), the "
              "configurations in turn in each round. torchrun's processes each load the model once and share the "
              "entries out (every second entry); rank 0 gathers the results and writes the summary. 'vos's choice' is "
              "what vos track does without --threads: PyTorch's default less the cores other processes keep busy "
              "at start-up (docs/speed.md); torchrun gives each process one thread (OMP_NUM_THREADS=1).", "",
              f"CPU: {result['cpu']}, {result['cores']} cores shared with other work (1/5/15-minute load average "
              f"{', '.join(f'{x:.1f}' for x in load_before)} before, {', '.join(f'{x:.1f}' for x in load_after)} "
              f"after); PyTorch {result['torch']}, CPU capability {result['torch_cpu_capability']}"
              f"{' (AVX2, no AVX-512)' if result['torch_cpu_capability'] == 'AVX2' else ''}."]
    (out / "manifest_sharding.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
