"""Copy-paste composites: real objects cut out of real images along their human-annotated masks, pasted onto
other real images and moved over them, with exact masks.

Real masks are the scarce resource; a few hundred of them, cut out and recombined, give any number of
realistic multi-object images and clips. Several objects per image are what teach a model to read *where*
a click is: with one salient object per image it can ignore the prompt and still be right. A scene is a
real image (with its own annotated object, kept as a target or left as an unlabelled look-alike) panning
slowly, or a run of real video frames whose object moves by itself; on top of it, cut-out objects move,
scale, turn, occlude each other in a fixed depth order, and leave the frame and come back.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from evaluation.masks import read_index_png


@dataclass
class Cutout:
    """A real object: ``image (h, w, 3)`` RGB ``uint8`` cropped to its mask's box, ``mask (h, w)`` bool."""

    image: np.ndarray
    mask: np.ndarray


@dataclass
class Scene:
    """Real frames to paste onto: ``frames (T, H, W, 3)`` RGB ``uint8`` with ``masks (T, H, W)`` object ids
    (0 = background); a still image is one frame."""

    frames: np.ndarray
    masks: np.ndarray


def cutouts_from_masks(images: list[np.ndarray], masks: list[np.ndarray], min_area: int = 400) -> list[Cutout]:
    """One :class:`Cutout` per object id of each ``(H, W)`` id map, cropped to its box; objects smaller
    than ``min_area`` pixels are left out (too small to paste at a useful size)."""
    out = []
    for image, ids in zip(images, masks):
        for i in np.unique(ids):
            if i == 0:
                continue
            m = ids == i
            if m.sum() < min_area:
                continue
            x, y, w, h = cv2.boundingRect(m.astype(np.uint8))
            out.append(Cutout(np.ascontiguousarray(image[y : y + h, x : x + w]), m[y : y + h, x : x + w].copy()))
    return out


def read_image_set(root: str | Path, exclude: set[str] | frozenset[str] = frozenset()) -> list[Scene]:
    """An interactive-segmentation image set, ``root/images/<name>.jpg`` with ``root/masks/<name>.png``
    (0 background, non-zero object), one object per file, as still :class:`Scene` s in name order.

    Files whose JPEG bytes are identical show one image: their objects are merged into one scene (ids in
    name order, a later mask in front). Names in ``exclude`` are left out together with every other
    object of their image, so that a held-out image is never seen.
    """
    root = Path(root)
    files = sorted((root / "masks").glob("*.png"))
    if not files:
        raise FileNotFoundError(f"{root}: no masks/*.png")
    groups: dict[bytes, list[Path]] = {}
    for png in files:
        jpg = root / "images" / f"{png.stem}.jpg"
        if not jpg.is_file():
            raise FileNotFoundError(f"{jpg}: missing (needed for {png})")
        groups.setdefault(hashlib.sha1(jpg.read_bytes()).digest(), []).append(png)
    scenes = []
    for pngs in groups.values():
        if any(p.stem in exclude for p in pngs):
            continue
        jpg = root / "images" / f"{pngs[0].stem}.jpg"
        image = cv2.imread(str(jpg), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{jpg}: not a readable image")
        ids = np.zeros(image.shape[:2], np.uint8)
        for i, png in enumerate(pngs, 1):
            mask = read_index_png(png)
            if mask.shape != ids.shape:
                raise ValueError(f"{png}: mask is {mask.shape[1]}x{mask.shape[0]}, its image {ids.shape[1]}x{ids.shape[0]}")
            ids[mask > 0] = i
        scenes.append(Scene(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None], ids[None]))
    return scenes


@dataclass
class _Mover:
    cutout: Cutout
    label: int
    start: np.ndarray  # centre (x, y) at t = 0
    velocity: np.ndarray
    scale: float  # pasted height as a share of the frame height
    scale_speed: float
    angle: float
    spin: float
    flip: bool


def _bounce(p: float, lo: float, hi: float) -> float:
    span = hi - lo
    q = (p - lo) % (2 * span)
    return lo + (2 * span - q if q > span else q)


def _scene_frames(scene: Scene, rng: np.random.Generator, num_frames: int, size: tuple[int, int]):
    """``num_frames`` frames and id maps of ``size = (H, W)`` from a scene: consecutive frames of a video
    (resized), or a still image zoomed and panning slowly."""
    h, w = size
    if len(scene.frames) > 1:
        start = int(rng.integers(max(len(scene.frames) - num_frames, 0) + 1))
        frames, masks = scene.frames[start : start + num_frames], scene.masks[start : start + num_frames]
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
        masks = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in masks])
        return frames.astype(np.float32), masks
    image, ids = scene.frames[0], scene.masks[0]
    ih, iw = ids.shape
    zoom = max(h / ih, w / iw) * rng.uniform(1.05, 1.4)
    big_w, big_h = int(iw * zoom) + 1, int(ih * zoom) + 1
    big = cv2.resize(image, (big_w, big_h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    big_ids = cv2.resize(ids, (big_w, big_h), interpolation=cv2.INTER_NEAREST)
    slack = np.array([big_w - w, big_h - h], np.float32)
    a, b = rng.random(2) * slack, rng.random(2) * slack
    frames = np.empty((num_frames, h, w, 3), np.float32)
    masks = np.empty((num_frames, h, w), np.uint8)
    for t in range(num_frames):
        x, y = (a + (b - a) * t / max(num_frames - 1, 1)).astype(int)
        frames[t], masks[t] = big[y : y + h, x : x + w], big_ids[y : y + h, x : x + w]
    return frames, masks


def composite_video(
    rng: np.random.Generator,
    scene: Scene,
    cutouts: list[Cutout],
    num_frames: int,
    size: tuple[int, int] = (240, 427),
    num_pasted: int = 2,
    keep_scene_objects: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``frames (T, H, W, 3)`` RGB ``uint8`` and ``masks (T, H, W)`` ids: ``num_pasted`` cut-outs moving
    over ``scene``. The scene's own objects keep ids 1.. when ``keep_scene_objects`` (else they are
    unlabelled background); pasted objects follow, in depth order (later ones in front)."""
    h, w = size
    frames, scene_ids = _scene_frames(scene, rng, num_frames, size)
    labels = scene_ids.copy() if keep_scene_objects else np.zeros_like(scene_ids)
    next_id = int(labels.max()) + 1
    movers = []
    for k in range(num_pasted):
        c = cutouts[int(rng.integers(len(cutouts)))]
        movers.append(_Mover(
            cutout=c, label=next_id + k,
            start=rng.uniform([0.1 * w, 0.1 * h], [0.9 * w, 0.9 * h]),
            velocity=rng.normal(0, 0.02 * w, 2) * (rng.random() < 0.8),
            scale=float(np.exp(rng.uniform(np.log(0.2), np.log(0.75)))),
            scale_speed=rng.uniform(-0.015, 0.015), angle=rng.uniform(-20, 20), spin=rng.normal(0, 1.5),
            flip=bool(rng.random() < 0.5),
        ))
    for m in movers:
        image, mask = m.cutout.image, m.cutout.mask.astype(np.float32)
        if m.flip:
            image, mask = image[:, ::-1], mask[:, ::-1]
        image = np.ascontiguousarray(image).astype(np.float32)
        mask = np.ascontiguousarray(mask)
        ch, cw = mask.shape
        for t in range(num_frames):
            scale = max(0.08, m.scale * (1 + m.scale_speed * t)) * h / ch
            margin = 0.5 * scale * max(ch, cw)
            cx = _bounce(m.start[0] + m.velocity[0] * t, -margin, w + margin)
            cy = _bounce(m.start[1] + m.velocity[1] * t, -margin, h + margin)
            warp = cv2.getRotationMatrix2D((cw / 2, ch / 2), m.angle + m.spin * t, scale)
            warp[:, 2] += (cx - cw / 2, cy - ch / 2)
            alpha = cv2.warpAffine(mask, warp, (w, h), flags=cv2.INTER_LINEAR)
            if not alpha.any():
                continue
            color = cv2.warpAffine(image, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            # A slightly soft edge, as a real boundary has: a hard one would give pasted objects away.
            soft = cv2.GaussianBlur(alpha, (3, 3), 0.7)[..., None]
            frames[t] = frames[t] * (1 - soft) + color * soft
            labels[t][alpha >= 0.5] = m.label
    # Renumber so that ids are 1..N in order of appearance (occluded-away objects drop out).
    present = [i for i in np.unique(labels) if i != 0]
    lut = np.zeros(256, np.uint8)
    lut[present] = np.arange(1, len(present) + 1)
    return frames.round().clip(0, 255).astype(np.uint8), lut[labels]


class CompositeSource:
    """Draws composite clips: a random :class:`Scene` (still images and videos) with up to
    ``max_pasted`` random :class:`Cutout` s moving over it."""

    def __init__(self, scenes: list[Scene], cutouts: list[Cutout], max_pasted: int = 3) -> None:
        if not scenes or not cutouts:
            raise ValueError("composites need at least one scene and one cut-out")
        self.scenes, self.cutouts, self.max_pasted = scenes, cutouts, max_pasted

    @classmethod
    def from_data(
        cls, image_sets: list[str | Path] = (), videos=None, max_pasted: int = 3, video_every: int = 10,
        exclude: set[str] | frozenset[str] = frozenset(),
    ) -> "CompositeSource":
        """Scenes and cut-outs from interactive image sets (``root/images``, ``root/masks``; the images of
        names in ``exclude`` left out) and from a :class:`~vos.train.clips.DavisVideos` (its videos as
        scenes; every ``video_every``-th frame's objects as cut-outs and as still scenes)."""
        scenes, cutouts = [], []
        for root in image_sets:
            still = read_image_set(root, exclude)
            scenes += still
            cutouts += cutouts_from_masks([s.frames[0] for s in still], [s.masks[0] for s in still])
        if videos is not None:
            for frames, masks in videos.videos:
                scenes.append(Scene(frames, masks))
                picks = range(0, len(frames), video_every)
                scenes += [Scene(frames[i][None], masks[i][None]) for i in picks]
                cutouts += cutouts_from_masks([frames[i] for i in picks], [masks[i] for i in picks])
        return cls(scenes, cutouts, max_pasted)

    def sample(self, rng: np.random.Generator, num_frames: int, size: tuple[int, int] = (240, 427)) -> tuple[np.ndarray, np.ndarray]:
        scene = self.scenes[int(rng.integers(len(self.scenes)))]
        keep = bool(rng.random() < 0.7)
        pasted = int(rng.integers(0 if keep else 1, self.max_pasted + 1))
        return composite_video(rng, scene, self.cutouts, num_frames, size, num_pasted=pasted, keep_scene_objects=keep)
