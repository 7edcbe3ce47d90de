"""Scoring whole datasets: one worker process per sequence, CSV files as the official tools write them, a plot."""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from streams.files import atomic_write

from . import davis, sav
from .davis import ObjectScores
from .masks import frame_pngs
from .plot import bar_chart

DAVIS_COLUMNS = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]


@dataclass
class Report:
    """Scores of every object of every sequence, in sequence order."""

    objects: list[ObjectScores]

    def global_scores(self) -> dict[str, float]:
        """Object-weighted means of every per-object statistic (no per-sequence averaging first)."""
        rows = [o.summary() for o in self.objects]
        out = {c: float(np.mean([r[c] for r in rows])) for c in DAVIS_COLUMNS if c != "J&F-Mean"}
        out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2
        return {c: out[c] for c in DAVIS_COLUMNS}

    def table(self) -> list[str]:
        """Lines of a table of J&F, J and F per object, then the global scores."""
        lines = [f"{'object':<28}{'J&F':>8}{'J':>8}{'F':>8}"]
        rows = [(o.name, o.summary()) for o in self.objects] + [("GLOBAL", self.global_scores())]
        lines += [f"{name:<28}{s['J&F-Mean']:>8.3f}{s['J-Mean']:>8.3f}{s['F-Mean']:>8.3f}" for name, s in rows]
        return lines

    def write_davis_csv(self, folder: Path, subset: str = "val") -> tuple[Path, Path]:
        """``global_results-<subset>.csv`` and ``per-sequence_results-<subset>.csv`` as davis2017-evaluation
        writes them (fractions, 3 decimals), atomically."""
        folder = Path(folder)
        g = self.global_scores()
        global_path = _write_csv(folder / f"global_results-{subset}.csv", DAVIS_COLUMNS,
                                 [[f"{g[c]:.3f}" for c in DAVIS_COLUMNS]])
        summaries = [(o.name, o.summary()) for o in self.objects]
        per_seq = [[name, f"{s['J-Mean']:.3f}", f"{s['F-Mean']:.3f}"] for name, s in summaries]
        seq_path = _write_csv(folder / f"per-sequence_results-{subset}.csv", ["Sequence", "J-Mean", "F-Mean"], per_seq)
        return global_path, seq_path

    def write_sav_csv(self, folder: Path) -> Path:
        """``results.csv`` as the SA-V evaluator writes it (×100, full precision, GLOBAL row first)."""
        j = [100 * float(np.mean(o.J)) for o in self.objects]
        f = [100 * float(np.mean(o.F)) for o in self.objects]
        rows = [["GLOBAL", "", repr(float(np.mean(j) + np.mean(f)) / 2), repr(float(np.mean(j))), repr(float(np.mean(f)))]]
        rows += [[o.sequence, o.object_id, repr((a + b) / 2), repr(a), repr(b)] for o, a, b in zip(self.objects, j, f)]
        return _write_csv(Path(folder) / "results.csv", ["video", "object", "J&F", "J", "F"], rows)

    def plot(self, path: Path, title: str = "J&F per object") -> Path:
        """A bar chart of J&F, J and F per object and the mean J&F (:func:`evaluation.plot.bar_chart`),
        written atomically as PNG."""
        chart = bar_chart([o.name for o in self.objects], [o.summary() for o in self.objects],
                          self.global_scores()["J&F-Mean"], title)
        return atomic_write(path, lambda tmp: chart.save(tmp, format="PNG"))


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(rows)

    return atomic_write(path, write)


def _run(fn: Callable, jobs: list[dict], processes: int | None, progress: bool) -> list[ObjectScores]:
    """``fn(**job, threads=...)`` for every job over ``processes`` worker processes; the cores left over go to
    threads inside each job (PNG decoding and OpenCV run outside the GIL). Jobs may score parts of a
    sequence: the parts of one object are joined in job order."""
    cores = os.cpu_count() or 1
    processes = min(processes or cores, max(len(jobs), 1))
    threads = max(cores // processes, 1)
    parts: list[list[ObjectScores]] = []
    if processes <= 1:
        for job in tqdm(jobs, desc="scoring", disable=not progress):
            parts.append(fn(**job, threads=threads))
    else:
        from concurrent.futures import ProcessPoolExecutor  # multiprocessing's import, only when used

        with ProcessPoolExecutor(processes) as pool:
            futures = [pool.submit(fn, **job, threads=threads) for job in jobs]
            for future in tqdm(futures, desc="scoring", disable=not progress):
                parts.append(future.result())
    pieces: dict[tuple[str, str], list[ObjectScores]] = {}
    for o in (o for part in parts for o in part):
        pieces.setdefault((o.sequence, o.object_id), []).append(o)
    return [ObjectScores(seq, obj, np.concatenate([p.J for p in ps]), np.concatenate([p.F for p in ps]))
            for (seq, obj), ps in pieces.items()]


def _names(root: Path, names: list[str] | None) -> list[str]:
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir()) if names is None else names


def evaluate_davis(
    gt_root: Path, pred_root: Path, sequences: list[str] | None = None, processes: int | None = None,
    progress: bool = False,
) -> Report:
    """Score DAVIS-layout predictions; ``gt_root`` holds one annotation folder per sequence.

    With several processes, sequences are cut into runs of frames so that the workers finish together."""
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    names = _names(gt_root, sequences)
    scored = {n: max(len(frame_pngs(gt_root / n)) - 2, 1) for n in names}  # a short one still gets its error
    workers = processes or os.cpu_count() or 1
    run = max(sum(scored.values()) // (16 * workers), 8) if workers > 1 else max(scored.values(), default=1)
    jobs = [dict(gt_dir=gt_root / n, pred_dir=pred_root / n, frames=slice(start, start + run))
            for n in names for start in range(0, scored[n], run)]
    return Report(_run(davis.evaluate_sequence, jobs, processes, progress))


def evaluate_sav(
    gt_root: Path, pred_root: Path, videos: list[str] | None = None, processes: int | None = None,
    progress: bool = False,
) -> Report:
    """Score SA-V-layout predictions (one binary PNG per object per annotated frame), a video per job."""
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    return Report(_run(sav.evaluate_video, [dict(gt_dir=gt_root / n, pred_dir=pred_root / n) for n in _names(gt_root, videos)],
                       processes, progress))
