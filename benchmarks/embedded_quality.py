"""How good the embedded model is, side by side with trackers that learn nothing, in one run.

* DAVIS 2016 dev (8 sequences, first-frame masks, official protocol): J&F, J and F per sequence for the
  model through the offline predictor (as ``vos eval``), the same model through the live tracker (frames in
  order, bounded memory: what streaming costs), copying the first mask to every frame, and warping the
  previous mask with OpenCV's DIS optical flow.
* ``vos demo``'s J&F on its real clip, and ``vos demo --synthetic``'s over seeds 0-9.
* Clicks to masks, the standard interactive protocol (first click at the deepest interior point, each
  next one at the deepest point of the larger error; through ``VideoPredictor.add_points`` on one frame):
  IoU after 1 and 3 clicks and from the tight box, on the demo's first frames (both objects of seeds
  0-9), the first frames of DAVIS dev, and 50 held-out COCO instances that training never sees
  (``benchmarks/data/coco_mval_heldout.txt``). For the first click also: which of the 3 candidate masks
  the IoU head picks against the best one, and how often the object-score head says "absent".

Writes ``benchmarks/results/embedded_quality.{json,md,png}``.

    python benchmarks/embedded_quality.py [--checkpoint PATH] [--seeds 10] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
DAVIS_DEV = DATA / "davis2016-dev"
COCO = DATA / "interactive-images" / "coco-mval"
HELD_OUT = ROOT / "benchmarks" / "data" / "coco_mval_heldout.txt"


# ---------------------------------------------------------------------- clicks
def click_scores(model, image: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """IoUs after 1 and 3 clicks and from the box for one object, and the first click's candidate
    diagnostics."""
    from evaluation.interactive import deepest_point, iou, next_click
    from streams import FrameArray
    from vos import TrackerSettings, VideoPredictor
    from vos.tracking.prompts import Prompt

    predictor = VideoPredictor(model, FrameArray(image), TrackerSettings())
    out: dict[str, float] = {}
    click = deepest_point(target)
    mask = predictor.add_points(0, 1, [click], [1]).masks[0]
    out["1 click"] = iou(mask, target)
    for n in (2, 3):
        step = next_click(mask, target)
        if step is not None:
            mask = predictor.add_points(0, 1, [step[0]], [step[1]], clear=False).masks[0]
        out[f"{n} clicks"] = iou(mask, target)
    x, y, w, h = cv2.boundingRect(target.astype(np.uint8))
    predictor.reset()
    out["box"] = iou(predictor.add_points(0, 1, box=[x, y, x + w, y + h]).masks[0], target)

    # The model's own view of the first click: every candidate, the IoU head's choice, the object score.
    core = predictor.core
    with torch.inference_mode():
        frame = core.encode(image, 0)
        coords, labels = Prompt.make(points=[click]).point_inputs(frame.size, model.image_size, core.device)
        heads = model.predict_masks(model.without_memory(frame.vision), frame.high_res(1), coords, labels,
                                    multimask_output=True)
        logits = torch.nn.functional.interpolate(heads.low_res_multimasks, size=image.shape[:2], mode="bilinear",
                                                 align_corners=False)[0]
    candidates = [iou(m.numpy() > 0, target) for m in logits]
    picked = int(heads.ious[0].argmax())
    out["candidate picked"] = candidates[picked]
    out["best candidate"] = max(candidates)
    out["picked is best"] = float(candidates[picked] == max(candidates))
    out["absent"] = float(heads.object_score[0, 0] <= 0)
    return out


def click_sets(seeds: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """``{set name: [(image, target mask)]}`` of the sets that exist here."""
    from evaluation.masks import read_index_png
    from vos.train.synthetic import generate_video

    sets: dict[str, list] = {"synthetic (demo first frames)": []}
    for seed in range(seeds):
        video = generate_video(seed, num_frames=1, size=(240, 320), num_objects=2, num_distractors=1)
        for obj in (1, 2):
            if (video.masks[0] == obj).any():
                sets["synthetic (demo first frames)"].append((video.frames[0], video.masks[0] == obj))
    if DAVIS_DEV.is_dir():
        names = (DAVIS_DEV / "ImageSets" / "dev.txt").read_text().split()
        sets["DAVIS 2016 dev first frames"] = [
            (cv2.cvtColor(cv2.imread(str(DAVIS_DEV / "JPEGImages" / "480p" / n / "00000.jpg")), cv2.COLOR_BGR2RGB),
             read_index_png(DAVIS_DEV / "Annotations" / "480p" / n / "00000.png") == 1)
            for n in names
        ]
    if COCO.is_dir():
        sets["COCO held out (50)"] = [
            (cv2.cvtColor(cv2.imread(str(COCO / "images" / f"{n}.jpg")), cv2.COLOR_BGR2RGB),
             read_index_png(COCO / "masks" / f"{n}.png") > 0)
            for n in HELD_OUT.read_text().splitlines() if n.strip()
        ]
    return sets


# ---------------------------------------------------------------------- DAVIS
def davis_runs(model, out: Path) -> dict[str, Path]:
    """Every method's masks for DAVIS dev under ``out/<method>/<sequence>/``."""
    from evaluation.baselines import copy_first_mask, flow_warp
    from evaluation.masks import frame_pngs, read_index_png
    from streams import FrameFolder
    from streams.masks import write_palette_png
    from vos import LiveTracker, TrackerSettings
    from vos.jobs.dataset_masks import predict_davis
    from vos.tracking.prompts import Prompt

    names = (DAVIS_DEV / "ImageSets" / "dev.txt").read_text().split()
    images, annotations = DAVIS_DEV / "JPEGImages" / "480p", DAVIS_DEV / "Annotations" / "480p"
    dirs = {m: out / m for m in ("vos offline", "vos live", "copy first mask", "DIS optical flow")}
    t0 = time.perf_counter()
    predict_davis(model, DAVIS_DEV, dirs["vos offline"], names, progress=False)
    seconds = {"vos offline": time.perf_counter() - t0}
    for method, run in (("vos live", None), ("copy first mask", copy_first_mask), ("DIS optical flow", flow_warp)):
        t0 = time.perf_counter()
        for name in names:
            folder = FrameFolder(images / name)
            first = read_index_png(frame_pngs(annotations / name)[0])
            first[first == 255] = 0
            target = dirs[method] / name
            target.mkdir(parents=True, exist_ok=True)
            frames = (f.image for f in folder)
            if run is None:
                tracker = LiveTracker(model, TrackerSettings.live(non_overlap=True))
                ids = [int(i) for i in np.unique(first) if i]
                prompts = {i: Prompt.make(mask=first == i) for i in ids}
                masks = (tracker.step(image, prompts if k == 0 else None).label_map() for k, image in enumerate(frames))
            else:
                masks = run(frames, first)
            for path, mask in zip(folder.files, masks):
                write_palette_png(target / f"{path.stem}.png", mask.astype(np.uint8))
        seconds[method] = time.perf_counter() - t0
    return dirs, names, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="model to measure (default: the embedded one)")
    parser.add_argument("--seeds", type=int, default=10, help="demo seeds 0..N-1")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=["clicks", "demo", "davis"], choices=["clicks", "demo", "davis"],
                        help="what to measure (default: everything)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="results folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import vos
    from evaluation import evaluate_davis
    from vos.jobs.demo import run_demo

    model = vos.load_model(args.checkpoint) if args.checkpoint else vos.load_model()
    import sys

    results: dict = {"checkpoint": args.checkpoint or "embedded vos_small", "torch": torch.__version__,
                     "command": " ".join(["python benchmarks/embedded_quality.py", *sys.argv[1:]]),
                     "machine": platform.processor() or platform.machine(), "threads": args.threads}

    clicks = {}
    for name, items in (click_sets(args.seeds) if "clicks" in args.parts else {}).items():
        scores = [click_scores(model, image, target) for image, target in items]
        clicks[name] = {"count": len(items), **{k: float(np.mean([s[k] for s in scores])) for k in scores[0]}}
        print(name, {k: round(v, 3) for k, v in clicks[name].items()})
    results["clicks"] = clicks

    demo = []
    with tempfile.TemporaryDirectory() as tmp:
        if "demo" in args.parts:
            r = run_demo(model, Path(tmp) / "clip", progress=False)
            results["demo_clip"] = {"J&F": r.j_and_f, "J": r.j, "F": r.f}
            print("demo (real clip) J&F", round(r.j_and_f, 3))
        for seed in range(args.seeds if "demo" in args.parts else 0):
            r = run_demo(model, Path(tmp) / str(seed), synthetic=True, seed=seed, progress=False)
            demo.append({"seed": seed, "J&F": r.j_and_f, "J": r.j, "F": r.f})
    results["demo"] = demo
    print("synthetic demo J&F", [round(d["J&F"], 3) for d in demo])

    if DAVIS_DEV.is_dir() and "davis" in args.parts:
        with tempfile.TemporaryDirectory() as tmp:
            dirs, names, seconds = davis_runs(model, Path(tmp))
            davis = {}
            for method, folder in dirs.items():
                report = evaluate_davis(DAVIS_DEV / "Annotations" / "480p", folder, names, processes=1, progress=False)
                per_seq = {s.sequence: s.summary() for s in report.objects}
                davis[method] = {"global": report.global_scores(), "sequences": per_seq, "seconds": seconds[method]}
                print(method, round(report.global_scores()["J&F-Mean"], 3))
        results["davis2016_dev"] = davis

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "embedded_quality.json").write_text(json.dumps(results, indent=1))
    write_markdown(results, out / "embedded_quality.md")
    if "davis2016_dev" in results:
        plot(results["davis2016_dev"], out / "embedded_quality.png")
    print(f"wrote {out / 'embedded_quality.md'}")


def write_markdown(results: dict, path: Path) -> None:
    lines = ["# The embedded model's quality, side by side with untrained baselines", "",
             f"Model: {results['checkpoint']}; torch {results['torch']}, {results['threads']} threads. "
             f"Command: `{results['command']}`.", ""]
    if "davis2016_dev" in results:
        davis = results["davis2016_dev"]
        methods = list(davis)
        lines += ["## DAVIS 2016 dev, J&F (J / F) (first-frame masks, official protocol)", "",
                  "| sequence | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for seq in davis[methods[0]]["sequences"]:
            cells = [davis[m]["sequences"][seq] for m in methods]
            lines.append(f"| {seq} | " + " | ".join(
                f"{c['J&F-Mean']:.3f} ({c['J-Mean']:.3f} / {c['F-Mean']:.3f})" for c in cells) + " |")
        for key in ("J&F-Mean", "J-Mean", "F-Mean"):
            lines.append(f"| **{key}** | " + " | ".join(f"**{davis[m]['global'][key]:.3f}**" for m in methods) + " |")
        lines.append("| seconds | " + " | ".join(f"{davis[m]['seconds']:.0f}" for m in methods) + " |")
        lines += ["", "vos offline is the offline predictor as `vos eval` runs it; vos live is the live tracker "
                  "(frames in order, bounded memory, re-prompts as prompted memories) on the same frames.", ""]
    if "demo_clip" in results:
        c = results["demo_clip"]
        lines += ["## `vos demo` (the shipped real clip, DAVIS 2016 `dog`, one click)", "",
                  f"J&F {c['J&F']:.3f} (J {c['J']:.3f}, F {c['F']:.3f})", ""]
    demo = results["demo"]
    mean = np.mean([d["J&F"] for d in demo]) if demo else float("nan")
    lines += ["## `vos demo --synthetic`, J&F by seed", "", "| seed | " + " | ".join(str(d["seed"]) for d in demo) + " | mean |",
              "|---|" + "---|" * (len(demo) + 1),
              "| J&F | " + " | ".join(f"{d['J&F']:.3f}" for d in demo) + f" | **{mean:.3f}** |", ""]
    lines += ["## Clicks to masks (mean IoU)", "",
              "| set | objects | 1 click | 2 clicks | 3 clicks | box | IoU head's pick (1 click) | best of 3 | pick is best | object judged absent |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in results["clicks"].items():
        lines.append(f"| {name} | {c['count']} | {c['1 click']:.3f} | {c['2 clicks']:.3f} | {c['3 clicks']:.3f} | "
                     f"{c['box']:.3f} | {c['candidate picked']:.3f} | {c['best candidate']:.3f} | "
                     f"{100 * c['picked is best']:.0f}% | {100 * c['absent']:.0f}% |")
    path.write_text("\n".join(lines) + "\n")


def plot(davis: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(davis)
    seqs = list(davis[methods[0]]["sequences"])
    x = np.arange(len(seqs) + 1)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(11, 4))
    for i, m in enumerate(methods):
        values = [davis[m]["sequences"][s]["J&F-Mean"] for s in seqs] + [davis[m]["global"]["J&F-Mean"]]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, values, width, label=m)
    ax.set_xticks(x, seqs + ["mean"], rotation=20)
    ax.set_ylabel("J&F")
    ax.set_ylim(0, 1)
    ax.set_title("DAVIS 2016 dev: the embedded model against trackers that learn nothing")
    ax.legend(ncol=len(methods), fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
