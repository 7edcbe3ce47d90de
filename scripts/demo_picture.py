"""docs/demo.png: four frames of ``vos demo``'s overlay (first, two between, last), two by two, each labelled
with its frame index. Usage: ``vos demo --out vos-demo && python scripts/demo_picture.py vos-demo docs/demo.png``."""
from __future__ import annotations

import sys
from pathlib import Path

import av
import cv2
import numpy as np


def main(demo_dir: str, out: str) -> None:
    with av.open(str(Path(demo_dir) / "overlay.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, 4).round().astype(int)
    tiles = []
    for i in picks:
        tile = cv2.resize(frames[i], (frames[i].shape[1] // 2, frames[i].shape[0] // 2), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, f"frame {i}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(tile)
    grid = np.vstack([np.hstack(tiles[:2]), np.hstack(tiles[2:])])
    if not cv2.imwrite(out, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"{out}: could not write the picture")
    print(f"wrote {out} (frames {', '.join(map(str, picks))})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
