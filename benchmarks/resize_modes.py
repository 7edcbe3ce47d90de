"""What the fast frame resize changes against the official PIL one: ``TrackerSettings(resize="fast")``
(torch's 8-bit antialiased bicubic, the native default) next to ``resize="pil"`` (PIL's bicubic, the
official frame loader's pixels exactly), in one run on the same frames.

* Pixels: the model input's difference in grey levels (mean, 99th percentile, max) on the first five frames
  of every DAVIS 2016 dev sequence, and the time per frame of each resize (480p -> the model's input size,
  and -> 1024 px, SAM 2's).
* Outputs: the same model tracks DAVIS 2016 dev (first-frame masks, official protocol) once per mode; per
  sequence, the IoU between the two modes' masks (mean and worst frame) and each mode's J&F.

Writes ``benchmarks/results/resize_modes.{json,md}``.

    python benchmarks/resize_modes.py [--checkpoint PATH] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DAVIS_DEV = ROOT.parent / "shared" / "data" / "davis2016-dev"
MODES = ("fast", "pil")


def pixel_differences(names: list[str], size: int) -> dict:
    """Model inputs of both resizes (through :func:`vos.model.transforms.preprocess`) on each sequence's first
    five frames, back in grey levels, and the time each takes."""
    from streams import FrameFolder
    from vos.model.transforms import PIXEL_MEAN, PIXEL_STD, preprocess

    mean, std = torch.tensor(PIXEL_MEAN).reshape(1, 3, 1, 1), torch.tensor(PIXEL_STD).reshape(1, 3, 1, 1)
    diffs, seconds = [], {m: 0.0 for m in MODES}
    for name in names:
        for frame in list(FrameFolder(DAVIS_DEV / "JPEGImages" / "480p" / name))[:5]:
            grey = {}
            for mode in MODES:
                t0 = time.perf_counter()
                x = preprocess(frame.image, size, resize=mode)
                seconds[mode] += time.perf_counter() - t0
                grey[mode] = ((x * std + mean) * 255).round()
            diffs.append((grey["fast"] - grey["pil"]).abs().ravel().numpy())
    d = np.concatenate(diffs)
    count = len(diffs)
    return {"frames": count, "mean": float(d.mean()), "p99": float(np.percentile(d, 99)), "max": int(d.max()),
            "ms_per_frame": {m: 1000 * s / count for m, s in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="model to measure (default: the embedded one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not DAVIS_DEV.is_dir():
        sys.exit(f"{DAVIS_DEV}: DAVIS 2016 dev is needed (see ../shared/data/README.md)")

    import vos
    from evaluation import evaluate_davis
    from evaluation.masks import frame_pngs, read_index_png
    from vos.jobs.dataset_masks import predict_davis

    model = vos.load_model(args.checkpoint) if args.checkpoint else vos.load_model()
    names = (DAVIS_DEV / "ImageSets" / "dev.txt").read_text().split()
    results: dict = {"checkpoint": args.checkpoint or "embedded vos_small", "torch": torch.__version__,
                     "command": " ".join(["python benchmarks/resize_modes.py", *sys.argv[1:]]),
                     "machine": platform.processor() or platform.machine(), "threads": args.threads,
                     "image_size": model.image_size}
    # The model's own input size, and SAM 2's 1024 px, where 480p frames are enlarged rather than shrunk.
    results["pixels"] = {str(size): pixel_differences(names, size) for size in sorted({model.image_size, 1024})}
    print("pixels", results["pixels"])

    with tempfile.TemporaryDirectory() as tmp:
        dirs = {m: Path(tmp) / m for m in MODES}
        scores, seconds = {}, {}
        for mode in MODES:
            t0 = time.perf_counter()
            predict_davis(model, DAVIS_DEV, dirs[mode], names,
                          vos.TrackerSettings.vos_inference(keep_history=False, resize=mode), progress=False)
            seconds[mode] = time.perf_counter() - t0
            report = evaluate_davis(DAVIS_DEV / "Annotations" / "480p", dirs[mode], names, processes=1, progress=False)
            scores[mode] = {"global": report.global_scores()["J&F-Mean"],
                            "sequences": {s.sequence: s.summary()["J&F-Mean"] for s in report.objects}}
        sequences = {}
        for name in names:
            ious = []
            for a, b in zip(frame_pngs(dirs["fast"] / name), frame_pngs(dirs["pil"] / name)):
                ma, mb = read_index_png(a) > 0, read_index_png(b) > 0
                union = (ma | mb).sum()
                ious.append(1.0 if union == 0 else float((ma & mb).sum() / union))
            sequences[name] = {"frames": len(ious), "iou_mean": float(np.mean(ious)), "iou_min": float(np.min(ious)),
                               **{f"J&F {m}": scores[m]["sequences"][name] for m in MODES}}
    results["tracking"] = {"sequences": sequences, "J&F": {m: scores[m]["global"] for m in MODES},
                           "seconds": seconds}
    print(json.dumps(results["tracking"]["J&F"]))

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "resize_modes.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out / "resize_modes.md")
    print(f"wrote {out / 'resize_modes.md'}")


def write_markdown(results: dict, path: Path) -> None:
    tr = results["tracking"]
    lines = ["# Fast (torch uint8 bicubic) against PIL (official) frame resize", "",
             f"Model: {results['checkpoint']} at {results['image_size']} px; torch {results['torch']}, "
             f"{results['threads']} threads, {results['machine']}. Command: `{results['command']}`.", "",
             "| model input | frames | mean abs difference (grey levels) | 99th percentile | max | ms per frame fast / pil |",
             "|---|---|---|---|---|---|"]
    for size, px in results["pixels"].items():
        lines.append(f"| {size} px | {px['frames']} | {px['mean']:.3f} | {px['p99']:.0f} | {px['max']} | "
                     f"{px['ms_per_frame']['fast']:.2f} / {px['ms_per_frame']['pil']:.2f} |")
    lines += ["", f"Tracking DAVIS 2016 dev with the model at {results['image_size']} px in each mode:", "",
              "| sequence | frames | mask IoU fast vs pil, mean | worst frame | J&F fast | J&F pil |",
              "|---|---|---|---|---|---|"]
    for name, s in tr["sequences"].items():
        lines.append(f"| {name} | {s['frames']} | {s['iou_mean']:.4f} | {s['iou_min']:.4f} | "
                     f"{s['J&F fast']:.3f} | {s['J&F pil']:.3f} |")
    lines += ["", f"DAVIS 2016 dev J&F: fast {tr['J&F']['fast']:.4f}, pil {tr['J&F']['pil']:.4f}; "
              f"tracking time {tr['seconds']['fast']:.0f} s vs {tr['seconds']['pil']:.0f} s.", ""]
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
