"""Where a dataset root keeps its frames and its annotations.

DAVIS nests both under a resolution (``JPEGImages/480p``, ``Annotations/480p``); YouTube-VOS-style roots
do not (``JPEGImages``, ``Annotations``). Scoring reads only the annotations, as the official DAVIS tool
does, so a root without frames can still be scored; running a model needs both.
"""
from __future__ import annotations

from pathlib import Path

RESOLUTIONS = ("480p", "Full-Resolution", "")


def annotations_dir(root: Path) -> Path:
    """The annotation folder (one sub-folder per sequence) of a DAVIS or YouTube-VOS-style root."""
    root = Path(root)
    for res in RESOLUTIONS:
        if (root / "Annotations" / res).is_dir():
            return root / "Annotations" / res
    raise FileNotFoundError(f"{root}: not a DAVIS or YouTube-VOS root (no Annotations[/480p])")


def dataset_dirs(root: Path) -> tuple[Path, Path]:
    """``(images, annotations)`` folders of a DAVIS (``480p`` level first) or YouTube-VOS-style root."""
    root = Path(root)
    for res in RESOLUTIONS:
        images, annotations = root / "JPEGImages" / res, root / "Annotations" / res
        if images.is_dir() and annotations.is_dir():
            return images, annotations
    raise FileNotFoundError(f"{root}: not a DAVIS or YouTube-VOS root (no JPEGImages[/480p] and Annotations[/480p])")

