"""Training clips: consecutive frames with per-object masks, from DAVIS-layout folders or the synthetic
generator, augmented as SAM 2's recipe does, and resized to the model's square input."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from evaluation.masks import frame_pngs, read_index_png
from streams import FrameFolder

from ..model.transforms import preprocess
from .composite import CompositeSource
from .synthetic import generate_video


@dataclass
class Clip:
    """``images (T, 3, S, S)`` normalised float32 and ``masks (T, N, S, S)`` bool for ``N`` objects, all
    visible on frame 0."""

    images: torch.Tensor
    masks: torch.Tensor


@dataclass(frozen=True)
class ClipSettings:
    """Sampling and augmentation: ``num_frames`` consecutive frames (``composite_frames`` for copy-paste
    composites, when given: short clips of still images cost less), reversed with ``reverse_prob``, or
    with ``image_prob`` a single frame (SAM-style image training within clip training), at most
    ``max_objects`` objects; ``synthetic_prob`` of clips from the generator, ``composite_prob`` from
    copy-paste composites, the rest from real videos."""

    num_frames: int = 8
    composite_frames: int | None = None
    image_prob: float = 0.0
    max_objects: int = 3
    reverse_prob: float = 0.5
    synthetic_prob: float = 0.5
    composite_prob: float = 0.0
    flip_prob: float = 0.5
    degrees: float = 25.0
    shear: float = 20.0
    scale: tuple[float, float] = (0.8, 1.2)
    brightness: float = 0.1
    contrast: float = 0.03
    saturation: float = 0.03
    grayscale_prob: float = 0.05


class DavisVideos:
    """Every sequence of a DAVIS-layout root (``JPEGImages/480p``, ``Annotations/480p``), held in memory
    as ``(T, H, W, 3)`` frames and ``(T, H, W)`` object ids; ``split`` is an ImageSets file or a list of
    names. Frames without an annotation file are skipped."""

    def __init__(self, root: str | Path, split: str | Path | list[str] | None = None) -> None:
        root = Path(root)
        images, annotations = root / "JPEGImages" / "480p", root / "Annotations" / "480p"
        for folder in (images, annotations):
            if not folder.is_dir():
                raise FileNotFoundError(f"{root} is not a DAVIS-layout root: {folder} is missing")
        if split is None:
            names = sorted(p.name for p in annotations.iterdir() if p.is_dir())
        elif isinstance(split, list):
            names = split
        else:
            names = [line.strip() for line in Path(split).read_text().splitlines() if line.strip()]
        self.names: list[str] = []
        self.videos: list[tuple[np.ndarray, np.ndarray]] = []
        for name in names:
            pngs = frame_pngs(annotations / name)
            folder = FrameFolder(images / name)
            by_stem = {p.stem: i for i, p in enumerate(folder.files)}
            keep = [p for p in pngs if p.stem in by_stem]
            frames = np.stack([folder.read(by_stem[p.stem]).image for p in keep])
            masks = np.stack([read_index_png(p) for p in keep])
            masks[masks == 255] = 0  # void is not an object
            self.names.append(name)
            self.videos.append((frames, masks))
        if not self.videos:
            raise ValueError(f"{root}: no sequences to train on")

    def __len__(self) -> int:
        return len(self.videos)


def _affine(rng: np.random.Generator, size: tuple[int, int], s: ClipSettings) -> np.ndarray:
    """A random ``(2, 3)`` affine map about the centre: rotation, shear and scale."""
    h, w = size
    angle = np.deg2rad(rng.uniform(-s.degrees, s.degrees))
    shear = np.deg2rad(rng.uniform(-s.shear, s.shear))
    scale = rng.uniform(*s.scale)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = scale * rot @ np.array([[1, np.tan(shear)], [0, 1]])
    centre = np.array([w / 2, h / 2])
    return np.hstack([linear, (centre - linear @ centre)[:, None]]).astype(np.float32)


def _jitter(image: np.ndarray, rng: np.random.Generator, s: ClipSettings, gray: bool) -> np.ndarray:
    x = image.astype(np.float32)
    x = x * rng.uniform(1 - s.brightness, 1 + s.brightness)
    mean = x.mean()
    x = (x - mean) * rng.uniform(1 - s.contrast, 1 + s.contrast) + mean
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    sat = 0.0 if gray else rng.uniform(1 - s.saturation, 1 + s.saturation)
    x = luma[..., None] + (x - luma[..., None]) * sat
    return x.clip(0, 255)


class ClipSampler:
    """Draws augmented :class:`Clip` s of ``image_size`` from real videos, copy-paste composites and the
    synthetic generator, in the shares ``settings`` gives; a source that is not given takes no share."""

    def __init__(
        self,
        image_size: int,
        davis: DavisVideos | None = None,
        settings: ClipSettings = ClipSettings(),
        composites: CompositeSource | None = None,
    ) -> None:
        self.image_size = image_size
        self.davis = davis
        self.composites = composites
        self.settings = settings
        shares = {
            "synthetic": settings.synthetic_prob,
            "composite": settings.composite_prob if composites is not None else 0.0,
            "davis": max(1.0 - settings.synthetic_prob - settings.composite_prob, 0.0) if davis is not None else 0.0,
        }
        total = sum(shares.values())
        if total <= 0:  # nothing else to draw from
            shares, total = {"synthetic": 1.0}, 1.0
        self.sources = list(shares)
        self.shares = np.array([shares[k] for k in self.sources]) / total
        # Real frames make realistic backgrounds for the synthetic objects.
        self.backgrounds = [] if davis is None else [frames[0] for frames, _ in davis.videos]

    def sample(self, rng: np.random.Generator) -> Clip:
        s = self.settings
        while True:
            num_frames = 1 if rng.random() < s.image_prob else s.num_frames
            source = self.sources[int(rng.choice(len(self.sources), p=self.shares))]
            if source == "synthetic":
                frames, masks = self._synthetic(rng, num_frames)
            elif source == "composite":
                frames, masks = self.composites.sample(rng, min(num_frames, s.composite_frames or num_frames))
            else:
                frames, masks = self._davis(rng, num_frames)
            if rng.random() < s.reverse_prob:
                frames, masks = frames[::-1], masks[::-1]
            clip = self._augment(frames, masks, rng)
            if clip is not None:
                return clip

    def _synthetic(self, rng: np.random.Generator, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        video = generate_video(
            int(rng.integers(2**31)), num_frames, (240, 320),
            num_objects=int(rng.integers(1, self.settings.max_objects + 1)),
            num_distractors=int(rng.integers(0, 3)), backgrounds=self.backgrounds,
        )
        return video.frames, video.masks

    def _davis(self, rng: np.random.Generator, t: int) -> tuple[np.ndarray, np.ndarray]:
        frames, masks = self.davis.videos[int(rng.integers(len(self.davis)))]
        start = int(rng.integers(max(len(frames) - t, 0) + 1))
        return frames[start : start + t], masks[start : start + t]

    def _augment(self, frames: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> Clip | None:
        """Augment and resize; ``None`` when no object is visible on the first frame afterwards."""
        s, size = self.settings, self.image_size
        h, w = frames.shape[1:3]
        flip = rng.random() < s.flip_prob
        warp = _affine(rng, (h, w), s)
        gray = rng.random() < s.grayscale_prob
        images, labels = [], []
        for frame, mask in zip(frames, masks):
            if flip:
                frame, mask = frame[:, ::-1], mask[:, ::-1]
            frame = cv2.warpAffine(np.ascontiguousarray(frame), warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            mask = cv2.warpAffine(np.ascontiguousarray(mask), warp, (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
            # 8-bit frames through the inference preprocessing, so that training sees what tracking sees.
            frame = _jitter(frame, rng, s, gray).round().astype(np.uint8)
            images.append(preprocess(frame, size)[0])
            labels.append(cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST))
        labels = np.stack(labels)
        ids = [i for i in np.unique(labels[0]) if i != 0]
        if not ids:
            return None
        ids = rng.permutation(ids)[: s.max_objects]
        masks_t = torch.from_numpy(np.stack([labels == i for i in ids], 1))
        return Clip(torch.stack(images), masks_t)
