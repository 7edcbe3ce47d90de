"""Procedural training videos with exact masks.

Textured blobs move, scale and rotate over a background (a real frame that pans slowly, or a procedural
texture), occlude each other in a fixed depth order, leave the frame and come back, and are joined by
look-alike distractors: unlabelled copies with the same kind of shape and a colour-shifted texture of a
labelled object. Everything follows from the seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class SyntheticVideo:
    """``frames (T, H, W, 3)`` RGB ``uint8`` and ``masks (T, H, W)`` ``uint8`` object ids (0 = background)."""

    frames: np.ndarray
    masks: np.ndarray

    @property
    def num_objects(self) -> int:
        return int(self.masks.max())


@dataclass
class _Sprite:
    texture: np.ndarray  # (s, s, 3) float32
    shape: np.ndarray  # (s, s) float32 in {0, 1}
    label: int  # 0 for a distractor
    start: np.ndarray  # centre (x, y) at t = 0
    velocity: np.ndarray  # pixels per frame
    scale: float
    scale_speed: float
    angle: float
    spin: float


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """``(size, size)`` noise in [0, 1], smooth over ``size / cells`` pixels."""
    grid = rng.random((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size, 3)`` float32 in [0, 255]: coloured noise, stripes or checks over two random colours."""
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    kind = rng.integers(3)
    if kind == 0:
        t = _smooth_noise(rng, size, int(rng.integers(3, 12)))
    else:
        yy, xx = np.mgrid[:size, :size].astype(np.float32)
        theta, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
        u = xx * np.cos(theta) + yy * np.sin(theta)
        if kind == 1:
            t = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
        else:
            v = -xx * np.sin(theta) + yy * np.cos(theta)
            t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    t = t[..., None]
    out = a * (1 - t) + b * t + rng.normal(0, 6, (size, size, 3))
    return out.clip(0, 255).astype(np.float32)


def _blob(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(size, size)`` float32 mask of a random star-shaped blob filling most of the square."""
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    radius = np.ones_like(theta)
    for k in range(2, 6):
        radius += rng.uniform(0, 0.35 / k * 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    radius = radius / radius.max() * size * 0.48
    pts = np.stack([size / 2 + radius * np.cos(theta), size / 2 + radius * np.sin(theta)], 1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    return mask.astype(np.float32)


def _background(rng: np.random.Generator, size: tuple[int, int], backgrounds: list[np.ndarray] | None, frames: int):
    """A function ``t -> (H, W, 3) float32`` background: a real image panning, or a procedural texture."""
    h, w = size
    if backgrounds and rng.random() < 0.7:
        image = backgrounds[int(rng.integers(len(backgrounds)))].astype(np.float32)
        zoom = rng.uniform(1.1, 1.5)
        big = cv2.resize(image, (int(w * zoom) + 1, int(h * zoom) + 1), interpolation=cv2.INTER_LINEAR)
    else:
        side = int(max(h, w) * 1.3) + 1
        big = _texture(rng, side)
        big = cv2.resize(big, (side, side))[: int(h * 1.3) + 1]
    slack = np.array([big.shape[1] - w, big.shape[0] - h], np.float32)
    start, end = rng.random(2) * slack, rng.random(2) * slack
    def at(t: int) -> np.ndarray:
        x, y = (start + (end - start) * t / max(frames - 1, 1)).astype(int)
        return big[y : y + h, x : x + w]
    return at


def _position(sprite: _Sprite, t: int, size: tuple[int, int], margin: float) -> np.ndarray:
    """Centre at frame ``t``: straight motion reflected at bounds ``margin`` pixels outside the frame, so
    objects can leave it and come back."""
    h, w = size
    lo = np.array([-margin, -margin])
    span = np.array([w + 2 * margin, h + 2 * margin])
    p = (sprite.start + sprite.velocity * t - lo) % (2 * span)
    return lo + np.where(p > span, 2 * span - p, p)


def generate_video(
    seed: int,
    num_frames: int = 24,
    size: tuple[int, int] = (240, 320),
    num_objects: int = 2,
    num_distractors: int = 1,
    backgrounds: list[np.ndarray] | None = None,
) -> SyntheticVideo:
    """A deterministic synthetic video of ``size = (H, W)`` with ``num_objects`` labelled objects (ids 1..N)
    and ``num_distractors`` look-alikes; ``backgrounds`` are optional RGB images to pan over."""
    if num_objects < 1:
        raise ValueError("a synthetic video needs at least one object")
    rng = np.random.default_rng(seed)
    h, w = size
    sprites: list[_Sprite] = []
    for i in range(num_objects + num_distractors):
        side = int(rng.uniform(0.25, 0.45) * min(h, w)) | 1
        if i < num_objects:
            texture, shape = _texture(rng, side), _blob(rng, side)
        else:  # a look-alike: a labelled object's texture, colour-shifted, on a shape of the same kind
            twin = sprites[int(rng.integers(num_objects))]
            texture = cv2.resize(twin.texture, (side, side)) + rng.normal(0, 20, 3).astype(np.float32)
            shape = _blob(rng, side)
        sprites.append(_Sprite(
            texture=texture.clip(0, 255), shape=shape, label=i + 1 if i < num_objects else 0,
            start=rng.uniform([0.15 * w, 0.15 * h], [0.85 * w, 0.85 * h]),
            velocity=rng.normal(0, 0.025 * min(h, w), 2), scale=rng.uniform(0.7, 1.2),
            scale_speed=rng.uniform(-0.01, 0.01), angle=rng.uniform(0, 360), spin=rng.normal(0, 3),
        ))
    order = rng.permutation(len(sprites))  # back to front
    background = _background(rng, size, backgrounds, num_frames)
    frames = np.empty((num_frames, h, w, 3), np.uint8)
    masks = np.zeros((num_frames, h, w), np.uint8)
    for t in range(num_frames):
        canvas = background(t).copy()
        labels = np.zeros((h, w), np.uint8)
        for s in (sprites[i] for i in order):
            side = s.shape.shape[0]
            scale = max(0.3, s.scale * (1 + s.scale_speed * t))
            cx, cy = _position(s, t, size, margin=side * scale * 0.6)
            warp = cv2.getRotationMatrix2D((side / 2, side / 2), s.angle + s.spin * t, scale)
            warp[:, 2] += (cx - side / 2, cy - side / 2)
            alpha = cv2.warpAffine(s.shape, warp, (w, h), flags=cv2.INTER_LINEAR)
            if not alpha.any():
                continue
            color = cv2.warpAffine(s.texture, warp, (w, h), flags=cv2.INTER_LINEAR)
            canvas = canvas * (1 - alpha[..., None]) + color * alpha[..., None]
            labels[alpha >= 0.5] = s.label
        frames[t] = canvas.round().clip(0, 255).astype(np.uint8)
        masks[t] = labels
    return SyntheticVideo(frames, masks)
