"""Where a model's generator filters should sit (``vos.model.config.GeneratorDefaults``): the masks per image and
how well the human-annotated object is found, over a grid of predicted-IoU and stability thresholds, on real COCO
images (``interactive-images/coco-mval``, every 33rd of the 800, so 24 categories).

Every candidate of the click grid (32x32 clicks, three masks each) is generated once without filters, then each
threshold pair is applied and de-duplicated as the generator does (box NMS at 0.7, by predicted IoU), so a pair
costs no model run. "Best IoU" is the best IoU of a kept mask with the image's annotated object.

Usage: ``python scripts/generator_thresholds.py [CHECKPOINT] [--data ../shared/data]`` (default: the embedded model).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.ops import batched_nms

import vos
from vos.image.mask_generator import MaskGenerator, rle_to_mask

PRED_IOU = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.8)
STABILITY = (0.0, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.95)


def candidates(model, image: np.ndarray, annotation: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate's predicted IoU, stability, box, IoU with ``annotation`` and area (fraction of the image)."""
    generator = MaskGenerator(model, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0,
                              output_mode="uncompressed_rle")
    records = generator.generate(image)
    masks = np.stack([rle_to_mask(r["segmentation"]) for r in records]).reshape(len(records), -1)
    truth = annotation.reshape(1, -1)
    return {
        "pred_iou": np.array([r["predicted_iou"] for r in records]),
        "stability": np.array([r["stability_score"] for r in records]),
        "boxes": np.array([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in records)]),
        "iou": (masks & truth).sum(1) / np.maximum((masks | truth).sum(1), 1),
        "area": masks.mean(1),
    }


def kept(c: dict[str, np.ndarray], pred_iou: float, stability: float, nms: float = 0.7) -> np.ndarray:
    """Indices of the candidates the generator keeps with these thresholds."""
    passed = np.flatnonzero((c["pred_iou"] > pred_iou) & (c["stability"] >= stability))
    if not len(passed):
        return passed
    scores = torch.as_tensor(c["pred_iou"][passed]).float()
    keep = batched_nms(torch.as_tensor(c["boxes"][passed]).float(), scores, torch.zeros(len(passed)), nms)
    return passed[keep.numpy()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", default=None)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
    args = parser.parse_args()
    root = Path(args.data) / "interactive-images" / "coco-mval"
    names = sorted(p.stem for p in (root / "images").glob("*.jpg"))[::33][:24]
    model = vos.load_model(args.checkpoint)
    print(f"{model.config.name}: its defaults {model.config.generator}; {len(names)} images from {root}")
    per_image = []
    for name in names:
        image = np.asarray(Image.open(root / "images" / f"{name}.jpg").convert("RGB"))
        annotation = np.asarray(Image.open(root / "masks" / f"{name}.png")) > 0
        per_image.append(candidates(model, image, annotation))
    best_scores = [c["pred_iou"].max() for c in per_image]
    print(f"highest predicted IoU per image: {min(best_scores):.2f}-{max(best_scores):.2f}; best IoU with the "
          f"annotation among all candidates (mean): {np.mean([c['iou'].max() for c in per_image]):.3f}\n")
    print("| pred IoU | stability | masks an image: median (min-max) | best IoU with the object (mean) | "
          "found (IoU > 0.5) | mean mask area |\n|---|---|---|---|---|---|")
    for pred_iou in PRED_IOU:
        for stability in STABILITY:
            picks = [kept(c, pred_iou, stability) for c in per_image]
            counts = [len(p) for p in picks]
            best = np.array([c["iou"][p].max() if len(p) else 0.0 for c, p in zip(per_image, picks)])
            areas = np.concatenate([c["area"][p] for c, p in zip(per_image, picks)])
            print(f"| {pred_iou:g} | {stability:g} | {int(np.median(counts))} ({min(counts)}-{max(counts)}) | "
                  f"{best.mean():.3f} | {(best > 0.5).sum()}/{len(best)} | "
                  f"{100 * areas.mean() if len(areas) else 0:.1f}% |")


if __name__ == "__main__":
    main()
