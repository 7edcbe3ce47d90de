"""Automatic mask generation against the official generator, and the per-frame cost of tracking everything.

1. ``MaskGenerator`` and the official ``SAM2AutomaticMaskGenerator``, the same random weights (an official
   config) on the same real COCO images, default settings, one run each, side by side: seconds per image,
   their ratio, and whether the records are identical.
2. ``EverythingTracker`` with the embedded model on a real clip: milliseconds per frame on frames with a
   search for new objects and on frames without, against tracking the same objects found on frame 0
   with no searches (the plain ``LiveTracker``).

    python benchmarks/mask_generator_speed.py [--size 512] [--images 2] [--frames 30]

Writes ``benchmarks/results/mask_generator_speed.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
DATA = ROOT.parent / "shared" / "data"


def _generator_rows(size: int, count: int) -> list[str]:
    import test_image_parity
    from oracle import OFFICIAL_YAML, build_official, random_state_dict
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator as Official
    from test_image_parity import (
        _assert_same_records,
        _official_generator,
        generator_weights,
    )

    from vos.sam2_compat import SAM2AutomaticMaskGenerator, build_sam2

    name = "sam2.1_hiera_tiny"
    test_image_parity.SIZE = size  # the official predictor's feature sizes follow the model's
    official = build_official(name, size, postprocessing=True)
    state = generator_weights(random_state_dict(official.state_dict(), seed=1))
    official.load_state_dict(state)
    path = ROOT / "benchmarks" / "results" / f".{name}_random.pt"
    torch.save({"model": state}, path)
    ours = build_sam2(OFFICIAL_YAML[name], path, device="cpu", hydra_overrides_extra=[f"++model.image_size={size}"])
    path.unlink()
    files = sorted((DATA / "interactive-images" / "coco-mval" / "images").glob("*.jpg"))[::100][:count]
    rows = []
    for file in files:
        image = np.array(Image.open(file).convert("RGB"))
        with torch.no_grad():
            t = time.perf_counter()
            theirs = _official_generator(official).generate(image)
            t_official = time.perf_counter() - t
            t = time.perf_counter()
            mine = SAM2AutomaticMaskGenerator(ours).generate(image)
            t_vos = time.perf_counter() - t
        try:
            _assert_same_records(theirs, mine)
            same = "identical"
        except AssertionError:
            same = "differ (packed kernels: float rounding)"
        rows.append(f"| {file.name} | {image.shape[1]}x{image.shape[0]} | {len(theirs)} | {t_official:.2f} | "
                    f"{t_vos:.2f} | {t_official / t_vos:.2f}x | {same} |")
        print(rows[-1], flush=True)
    assert Official  # imported for the record: the generator compared is the official class
    return rows


def _everything_rows(frames: int, every: int) -> list[str]:
    import vos
    from streams import open_video
    from vos.tracking.everything import EverythingSettings, EverythingTracker

    model = vos.load_model()
    video = open_video(DATA / "videos" / "bedroom.mp4")
    images = [video.read(i).image for i in range(frames)]
    settings = EverythingSettings(every=every, points_per_side=16, pred_iou_thresh=0.3, stability_score_thresh=0.1)
    tracker = EverythingTracker(model, settings)
    search, plain_frames = [], []
    first = None
    for i, image in enumerate(images):
        t = time.perf_counter()
        result = tracker.step(image)
        dt = time.perf_counter() - t
        if i == 0:
            first = result
        (search if i % every == 0 else plain_frames).append(dt)
    # The same objects as frame 0 found, tracked with no searches.
    live = vos.LiveTracker(model)
    prompts = {obj_id: vos.Prompt.make(mask=m) for obj_id, m in zip(first.obj_ids, first.masks)}
    baseline = []
    for i, image in enumerate(images):
        t = time.perf_counter()
        live.step(image, prompts if i == 0 else None)
        baseline.append(time.perf_counter() - t)
    base = float(np.median(baseline[1:]))
    total_everything = sum(search) + sum(plain_frames)
    return [
        f"| objects found on frame 0 / in all | {len(first.obj_ids)} / {tracker.next_id - 1} |",
        f"| plain tracking of frame 0's objects, median ms/frame | {base * 1000:.0f} |",
        f"| --everything, frames with a search (every {every}), median ms | {np.median(search) * 1000:.0f} |",
        f"| --everything, other frames, median ms | {np.median(plain_frames) * 1000:.0f} |",
        f"| --everything, mean ms/frame over the run (vs plain) | {total_everything / frames * 1000:.0f} "
        f"({total_everything / sum(baseline):.2f}x) |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512, help="model input size for the generator comparison")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--every", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = _generator_rows(args.size, args.images)
    ev = _everything_rows(args.frames, args.every)
    out = ROOT / "benchmarks" / "results" / "mask_generator_speed.md"
    out.write_text(
        f"# Automatic mask generation and tracking everything\n\n`{' '.join(sys.argv)}`, {args.threads} threads.\n\n"
        f"## Generator, sam2.1_hiera_tiny at {args.size} px, random weights, default settings (32x32 clicks)\n\n"
        "| image | size | masks | official s | vos s | speed-up | records |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(gen)
        + f"\n\n## Tracking everything, embedded model, bedroom.mp4 (960x540), {args.frames} frames, 16x16 clicks, "
        "pred_iou_thresh 0.3, stability 0.1\n\n| | |\n|---|---|\n" + "\n".join(ev) + "\n"
    )
    print(out.read_text())


if __name__ == "__main__":
    main()
