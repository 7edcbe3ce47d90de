"""J&F scoring speed: ``vos eval --predictions`` against ``vos-benchmark`` (PyPI), same inputs, same machine, one run.

Scores the real OSVOS predictions in ``../shared/data/osvos-dev`` against ``../shared/data/davis2016-dev``
(copied to a temporary folder: vos-benchmark writes a results file next to the predictions). Two measures,
each tool with the same number of worker processes, runs alternating, the figure the ratio of medians:

* **the command, start-up included**: a fresh process each run, as a user runs it: ``python -m vos eval
  --dataset davis --root ROOT --predictions PRED --processes N`` (the CSV files and the plot written), and
  vos-benchmark's ``benchmark()`` called from ``python -c`` (its package ships no command; its own
  ``benchmark.py`` script does the same: imports, scores, prints the table, writes ``results.csv``);
* **scoring alone**, in this process, imports done: ``evaluation.benchmark.evaluate_davis`` against
  ``vos_benchmark.benchmark.benchmark``.

Writes ``benchmarks/results/eval_speed.{json,md}``.

    pip install "vos[bench]"   # vos-benchmark, for the comparison only; vos does not depend on it
    python benchmarks/eval_speed.py
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return seconds


def _row(what: str, processes: int, ours: list[float], theirs: list[float]) -> dict:
    return {"measure": what, "processes": processes, "vos_s": statistics.median(ours),
            "vos_benchmark_s": statistics.median(theirs), "speedup": statistics.median(theirs) / statistics.median(ours),
            "vos_runs_s": ours, "vos_benchmark_runs_s": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from vos_benchmark.benchmark import benchmark

    from evaluation.benchmark import evaluate_davis

    load_before = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "davis"
        gt = root / "Annotations" / "480p"
        pred = Path(tmp) / "pred"
        shutil.copytree(DATA / "davis2016-dev" / "Annotations" / "480p", gt)
        shutil.copytree(DATA / "osvos-dev", pred, ignore=shutil.ignore_patterns("*.csv"))
        for processes in args.processes:
            ours_cmd = [sys.executable, "-m", "vos", "eval", "--dataset", "davis", "--root", str(root),
                        "--predictions", str(pred), "--out", str(Path(tmp) / "vos-out"), "--processes", str(processes)]
            theirs_cmd = [sys.executable, "-c", "from vos_benchmark.benchmark import benchmark; "
                          f"benchmark([{str(gt)!r}], [{str(pred)!r}], num_processes={processes})"]
            ours, theirs = [], []
            for _ in range(args.repeats):
                ours.append(_timed(ours_cmd, env))
                theirs.append(_timed(theirs_cmd, env))
            rows.append(_row("command, start-up included", processes, ours, theirs))
        for processes in args.processes:
            ours, theirs = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                report = evaluate_davis(gt, pred, processes=processes)
                ours.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    their_jf = benchmark([str(gt)], [str(pred)], num_processes=processes, verbose=False)[0][0]
                theirs.append(time.perf_counter() - t0)
            rows.append({**_row("scoring alone, in process", processes, ours, theirs),
                         "vos_jf": report.global_scores()["J&F-Mean"], "vos_benchmark_jf": their_jf / 100})
    load = (load_before, os.getloadavg()[0])  # other work on the machine slows both tools alike, runs alternating
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval_speed.json").write_text(json.dumps({"load_average": load, "rows": rows}, indent=1))
    jf = rows[-1]
    lines = [
        "# J&F scoring speed: vos against vos-benchmark 0.1.0",
        "",
        f"OSVOS predictions on DAVIS 2016 dev (8 sequences, 497 scored frames), median of {args.repeats} alternating "
        f"runs, {os.cpu_count()} CPU cores (load average {load[0]:.1f} before, {load[1]:.1f} after: other work ran "
        f"beside). `python benchmarks/eval_speed.py`. Both give J&F {jf['vos_jf']:.10f} (vos) and "
        f"{jf['vos_benchmark_jf']:.10f} (vos-benchmark).",
        "",
        "| measure | worker processes | vos (s) | vos-benchmark (s) | speed-up |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['measure']} | {r['processes']} | {r['vos_s']:.2f} | {r['vos_benchmark_s']:.2f} | "
                     f"{r['speedup']:.2f}x |")
    (args.out / "eval_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
