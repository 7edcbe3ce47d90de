#!/usr/bin/env python3
"""Turn a DUTS split (salient-object masks) into the image-set layout `vos train --images` reads.

DUTS (Wang et al., CVPR 2017: 10,553 training and 5,019 test images, longest side 400 px, soft masks) is
published, among other places, in the public repository Nithurshen/salient-object-detection (folders
data/DUTS-TR and data/DUTS-TE). This writes DST/images/<name>.jpg (the JPEG bytes as they are) and
DST/masks/<name>.png (1 where the soft mask is at least 128 of 255, else 0), skipping images whose mask
covers under `--min-area` of the image (nothing salient to learn from).

    python scripts/prepare_duts.py salient-object-detection/data/DUTS-TR /data/duts-tr
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="a DUTS split folder holding *-Image/ and *-Mask/ (e.g. data/DUTS-TR)")
    parser.add_argument("dst", type=Path, help="output folder (images/, masks/)")
    parser.add_argument("--min-area", type=float, default=0.01, help="smallest mask, as a share of the image")
    args = parser.parse_args()
    images = next(args.src.glob("*-Image"), None)
    masks = next(args.src.glob("*-Mask"), None)
    if images is None or masks is None:
        raise SystemExit(f"{args.src}: expected a *-Image and a *-Mask folder (DUTS layout)")
    (args.dst / "images").mkdir(parents=True, exist_ok=True)
    (args.dst / "masks").mkdir(parents=True, exist_ok=True)
    kept = skipped = 0
    for png in sorted(masks.glob("*.png")):
        jpg = images / f"{png.stem}.jpg"
        if not jpg.is_file():
            raise SystemExit(f"{jpg}: missing (needed for {png})")
        with Image.open(png) as soft:
            mask = np.asarray(soft.convert("L")) >= 128
        if mask.mean() < args.min_area:
            skipped += 1
            continue
        shutil.copyfile(jpg, args.dst / "images" / jpg.name)
        Image.fromarray(mask.astype(np.uint8)).save(args.dst / "masks" / png.name)
        kept += 1
    print(f"wrote {kept} images and masks to {args.dst} ({skipped} with masks under {args.min_area:.0%} left out)")


if __name__ == "__main__":
    main()
