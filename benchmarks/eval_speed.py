"""J&F scoring speed: vos's evaluator against ``vos-benchmark`` (PyPI), same inputs, same machine, one run.

Scores the real OSVOS predictions in ``../shared/data/osvos-dev`` against ``../shared/data/davis2016-dev``
(copied to a temporary folder: vos-benchmark writes a results file next to the predictions). Each tool
runs ``--repeats`` times, alternating, with the same number of worker processes; the figure is the ratio
of median times. Writes ``benchmarks/results/eval_speed.{json,md}``.

    pip install vos-benchmark   # the comparison only; vos does not depend on it
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
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from vos_benchmark.benchmark import benchmark

    from evaluation.benchmark import evaluate_davis

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        gt = Path(tmp) / "gt"
        pred = Path(tmp) / "pred"
        shutil.copytree(DATA / "davis2016-dev" / "Annotations" / "480p", gt)
        shutil.copytree(DATA / "osvos-dev", pred, ignore=shutil.ignore_patterns("*.csv"))
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
            rows.append({
                "processes": processes,
                "vos_s": statistics.median(ours),
                "vos_benchmark_s": statistics.median(theirs),
                "speedup": statistics.median(theirs) / statistics.median(ours),
                "vos_jf": report.global_scores()["J&F-Mean"],
                "vos_benchmark_jf": their_jf / 100,
            })
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval_speed.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# J&F scoring speed: vos against vos-benchmark 0.1.0",
        "",
        f"OSVOS predictions on DAVIS 2016 dev (8 sequences), median of {args.repeats} alternating runs, "
        f"{os.cpu_count()} CPU cores.",
        "",
        "| worker processes | vos (s) | vos-benchmark (s) | speed-up | vos J&F | vos-benchmark J&F |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['processes']} | {r['vos_s']:.2f} | {r['vos_benchmark_s']:.2f} | {r['speedup']:.2f}x | "
                     f"{r['vos_jf']:.4f} | {r['vos_benchmark_jf']:.4f} |")
    (args.out / "eval_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
