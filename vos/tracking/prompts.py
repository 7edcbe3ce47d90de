"""User prompts (clicks, a box, a mask) for one object on one frame, checked and put in model coordinates."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import shown


class PromptError(ValueError):
    """A prompt that cannot be used; the message says which object, frame and value."""


MAX_PALETTE_ID = 255  # DAVIS palette PNGs store one byte per pixel, 0 being the background


@dataclass(frozen=True)
class Prompt:
    """Clicks and/or a box, a mask, or a mask refined by clicks and/or a box, in video pixels.

    ``points (N, 2)`` are ``(x, y)``; ``labels (N,)`` are 1 (object) or 0 (background), all 1 when omitted;
    ``box`` is ``(x1, y1, x2, y2)``; ``mask (H, W)`` is a boolean mask of the whole frame. Prompts given one
    after another for one object and frame become one by :meth:`then`.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    @classmethod
    def make(cls, points=None, labels=None, box=None, mask=None, *, where: str = "prompt") -> "Prompt":
        """Build a prompt from lists, arrays or tensors; :class:`PromptError` (prefixed with ``where``) for
        anything that is not clicks, a box or a mask of the documented shapes."""
        if points is not None:
            points = _numbers(points, "points", where)
            if points.ndim == 1 and points.size == 2:
                points = points[None]
            if points.ndim != 2 or points.shape[1] != 2:
                hint = " (click labels go in labels=, not as a third number)" if points.shape[-1:] == (3,) else ""
                raise PromptError(f"{where}: points are (x, y) pairs of shape (N, 2), got shape {points.shape}{hint}")
            if not len(points):
                points = None
        if points is not None:
            if labels is None:
                labels = np.ones(len(points), np.int32)
            else:
                values = _numbers(labels, "labels", where, np.float64).reshape(-1)
                if not np.isin(values, (0, 1)).all():  # checked before the cast, which would wrap 2**32 to 0
                    raise PromptError(f"{where}: click labels must be 1 (object) or 0 (background), got "
                                      f"{shown(values.tolist())}")
                labels = values.astype(np.int32)
        elif labels is not None and np.asarray(labels, dtype=object).size:  # object: ragged lists are no error here
            raise PromptError(f"{where}: labels were given without points")
        else:
            labels = None
        box = None if box is None else _numbers(box, "box", where).reshape(-1)
        mask = None if mask is None else _boolean_mask(mask, where)
        return cls(points, labels, box, mask)

    @property
    def num_points(self) -> int:
        """Points as the decoder sees them: clicks, plus two corners for a box."""
        return (0 if self.points is None else len(self.points)) + (2 if self.box is not None else 0)

    def check(self, size: tuple[int, int], where: str) -> None:
        """Raise :class:`PromptError` unless the prompt fits a frame of ``size = (H, W)``. ``where`` names
        the object and frame in messages."""
        h, w = size
        if self.points is None and self.box is None and self.mask is None:
            raise PromptError(f"{where}: no clicks, box or mask")
        if self.mask is not None:
            if self.mask.ndim != 2:
                raise PromptError(f"{where}: mask must be (H, W), got shape {self.mask.shape}")
            if self.mask.shape != (h, w):
                raise PromptError(f"{where}: mask is {self.mask.shape[1]}x{self.mask.shape[0]}, the video is {w}x{h}")
            if not self.mask.any():
                raise PromptError(f"{where}: mask is empty (remove the object instead)")
        if self.points is not None:
            if len(self.labels) != len(self.points):
                raise PromptError(f"{where}: {len(self.points)} points but {len(self.labels)} labels")
            if not np.isin(self.labels, (0, 1)).all():
                raise PromptError(f"{where}: click labels must be 1 (object) or 0 (background), got {self.labels.tolist()}")
            for x, y in self.points:
                if not (0 <= x <= w and 0 <= y <= h and np.isfinite(x) and np.isfinite(y)):
                    raise PromptError(f"{where}: click ({x:g}, {y:g}) is outside the {w}x{h} frame")
        if self.box is not None:
            if self.box.shape != (4,) or not np.isfinite(self.box).all():
                raise PromptError(f"{where}: a box is four numbers x1,y1,x2,y2, got {self.box.tolist()}")
            x1, y1, x2, y2 = self.box
            corners = f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g})"
            if x2 < x1 or y2 < y1:
                raise PromptError(f"{where}: {corners} has {'x2 < x1' if x2 < x1 else 'y2 < y1'}: give the top-left "
                                  "corner first (x1,y1,x2,y2 with x1 < x2 and y1 < y2)")
            if x2 == x1 or y2 == y1:
                raise PromptError(f"{where}: {corners} has zero area")
            if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
                raise PromptError(f"{where}: {corners} lies entirely outside the {w}x{h} frame")

    @property
    def has_clicks(self) -> bool:
        """Whether the prompt holds clicks or a box (which the decoder reads as two clicks)."""
        return self.points is not None or self.box is not None

    def then(self, later: "Prompt", where: str = "prompt") -> "Prompt":
        """This prompt followed by ``later`` for the same object and frame: the one rule by which prompts given
        one after another become one. Clicks are concatenated in the order given. A box joins them whenever it
        comes, since the decoder reads a box before any click (as SAM 2 is trained), and a later box replaces an
        earlier one. A mask comes first: clicks and a box after it refine it; a mask after clicks or a box is
        refused (:class:`PromptError`, prefixed with ``where``), as it would silently discard them, and a mask
        after a mask replaces it."""
        if later.mask is not None and self.has_clicks:
            raise PromptError(f"{where}: a mask after clicks or a box; give the mask first (clicks and a box after "
                              "it refine it)")
        points = [x for x in (self.points, later.points) if x is not None]
        labels = [x for x in (self.labels, later.labels) if x is not None]
        return Prompt(
            np.concatenate(points) if points else None,
            np.concatenate(labels) if labels else None,
            later.box if later.box is not None else self.box,
            later.mask if later.mask is not None else self.mask,
        )

    def point_inputs(self, size: tuple[int, int], image_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``coords (1, N, 2)`` in model-input pixels and ``labels (1, N)``; a box comes first as two points
        labelled 2 and 3, as SAM 2 is trained."""
        coords, labels = [], []
        if self.box is not None:
            coords.append(self.box.reshape(2, 2))
            labels.append(np.array([2, 3], np.int32))
        if self.points is not None:
            coords.append(self.points)
            labels.append(self.labels)
        xy = torch.from_numpy(np.concatenate(coords)).float()
        h, w = size
        xy = xy / torch.tensor([w, h], dtype=torch.float32) * image_size
        return xy[None].to(device), torch.from_numpy(np.concatenate(labels)).int()[None].to(device)

    def mask_input(self, image_size: int, device) -> torch.Tensor:
        """``(1, 1, S, S)`` float mask in {0, 1}, resized (bilinear, antialiased, >= 0.5) as SAM 2 does."""
        m = torch.from_numpy(self.mask).float()[None, None].to(device)
        if m.shape[-2:] != (image_size, image_size):
            m = F.interpolate(m, size=(image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)
            m = (m >= 0.5).float()
        return m


def _numbers(values, what: str, where: str, dtype=np.float32) -> np.ndarray:
    """``values`` as an array of ``dtype``; :class:`PromptError` for anything but finite numbers within its range
    (casting would turn 1e300 into inf, and 10**400 cannot be cast at all)."""
    if isinstance(values, (str, bytes)):
        raise PromptError(f"{where}: {what} must be numbers, got the string {shown(values)}")
    try:
        wide = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PromptError(f"{where}: {what} must be numbers, got {shown(values)} ({exc})") from None
    if not (np.abs(wide) <= np.finfo(dtype).max).all():  # False for NaN too
        raise PromptError(f"{where}: {what} must be finite numbers, got {shown(wide.tolist())}")
    return wide.astype(dtype)


def _boolean_mask(mask, where: str) -> np.ndarray:
    """A boolean ``(H, W)`` mask from booleans, integers (non-zero is the object) or floats that are all
    0 or 1. Other floats (probabilities, logits) are refused: their threshold is the caller's choice."""
    if isinstance(mask, (str, bytes, os.PathLike)):
        raise PromptError(f"{where}: mask must be an (H, W) array, got the path {str(mask)!r}; read a PNG with "
                          "vos.tracking.prompts.read_mask_png")
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    values = np.asarray(mask)
    if values.dtype.kind not in "biuf":
        raise PromptError(f"{where}: mask must be an (H, W) array of booleans or numbers, got {type(mask).__name__} "
                          f"of {values.dtype}")
    if values.ndim != 2:
        hint = "; for a colour or multi-channel image, pick the channel that holds the mask" if values.ndim == 3 else ""
        raise PromptError(f"{where}: mask must be (H, W), got shape {values.shape}{hint}")
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise PromptError(f"{where}: mask holds NaN or infinite values")
        odd = values[(values != 0) & (values != 1)]
        if odd.size:
            raise PromptError(f"{where}: mask holds values other than 0 and 1 (e.g. {odd.flat[0]:g}); threshold "
                              "probabilities (mask > 0.5) or logits (mask > 0) first")
    return values.astype(bool)


def check_obj_id(obj_id, where: str = "") -> int:
    """Object ids are non-negative integers, as in SAM 2 (SA-V numbers its objects from 0). Outputs that store
    ids as pixel values need 1-255 as well: see :func:`check_palette_id`."""
    prefix = f"{where}: " if where else ""
    if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)):
        raise PromptError(f"{prefix}object id {shown(obj_id)} is not an integer")
    if obj_id < 0:
        raise PromptError(f"{prefix}object id {obj_id} is negative; ids are integers from 0 (1-255 for palette masks)")
    return int(obj_id)


def check_palette_id(obj_id: int) -> None:
    """Raise :class:`PromptError` unless ``obj_id`` fits a DAVIS palette mask (1-255; 0 is the background)."""
    if not 1 <= obj_id <= MAX_PALETTE_ID:
        raise PromptError(f"object id {obj_id} cannot be stored in DAVIS palette masks, whose pixels hold ids "
                          f"1-{MAX_PALETTE_ID} (0 is the background): use an id from 1 to {MAX_PALETTE_ID}, or "
                          "per-object masks (--masks sav)")


def check_frame_index(frame_idx, num_frames: int | None = None, where: str = "") -> int:
    """``frame_idx`` as an int, or :class:`PromptError` unless it is an integer in ``[0, num_frames)`` (from 0
    on when the number of frames is not known yet). The one check of a frame index, wherever one is given."""
    prefix = f"{where}: " if where else ""
    if isinstance(frame_idx, bool) or not isinstance(frame_idx, (int, np.integer)):
        raise PromptError(f"{prefix}frame index {shown(frame_idx)} is not an integer")
    if num_frames is None and frame_idx < 0:
        raise PromptError(f"{prefix}frame {frame_idx} does not exist: frames are numbered from 0")
    if num_frames is not None and not 0 <= frame_idx < num_frames:
        raise PromptError(f"{prefix}frame {frame_idx} does not exist: the video has {num_frames} frames")
    return int(frame_idx)


@dataclass(frozen=True)
class FramePrompt:
    """A prompt for object ``obj_id`` on frame ``frame``; both are checked (:func:`check_obj_id`,
    :func:`check_frame_index`) when it is made."""

    frame: int
    obj_id: int
    prompt: Prompt

    def __post_init__(self) -> None:
        object.__setattr__(self, "obj_id", check_obj_id(self.obj_id))
        object.__setattr__(self, "frame", check_frame_index(self.frame, where=f"object {self.obj_id}"))


def read_mask_png(path, obj_id: int | None = None) -> np.ndarray:
    """A boolean mask from a PNG: pixels equal to ``obj_id`` in an index (palette) PNG holding that id,
    otherwise every non-zero pixel."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            values = np.array(image)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PromptError(f"{path}: cannot read the mask PNG: {exc}") from exc
    if values.ndim == 3:
        values = values.max(axis=2)
    if obj_id is not None and (values == obj_id).any() and values.max() < 255:
        return values == obj_id
    return values > 0


def read_prompt_file(path) -> list[FramePrompt]:
    """Prompts from a JSON file, for reproducible runs: a list of objects like
    ``{"frame": 0, "obj_id": 1, "points": [[x, y], ...], "labels": [1, 0], "box": [x1, y1, x2, y2]}``
    or ``{"frame": 0, "obj_id": 2, "mask": "mask.png"}`` (a path relative to the JSON file)."""
    import json

    path = Path(path)
    try:
        entries = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8 text, nested beyond Python's stack
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise PromptError(f"{path}: not valid JSON: {reason}") from None
    return prompts_from_json(entries, str(path), path.parent)


def prompts_from_json(entries, source: str, base: Path) -> list[FramePrompt]:
    """Prompts from the decoded JSON of :func:`read_prompt_file` (a list of prompt objects, or one object),
    wherever it was written: ``source`` names it in messages, mask paths are relative to the folder ``base``."""
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise PromptError(f"{source}: expected a non-empty list of prompts")
    out = []
    allowed = {"frame", "obj_id", "points", "labels", "box", "mask"}
    for i, entry in enumerate(entries):
        where = f"{source}, prompt {i}"
        if not isinstance(entry, dict):
            raise PromptError(f"{where}: expected an object with frame, obj_id and points/box/mask")
        unknown = sorted(set(entry) - allowed)
        if unknown:
            raise PromptError(f"{where}: unknown keys {unknown} (allowed: {sorted(allowed)})")
        frame = check_frame_index(entry.get("frame", 0), where=where)
        obj_id = check_obj_id(entry.get("obj_id", 1), where)
        mask = None
        if entry.get("mask") is not None:
            if not isinstance(entry["mask"], str):
                raise PromptError(f"{where}: mask must be the path of a PNG file, got {shown(entry['mask'])}")
            mask = read_mask_png(base / entry["mask"], obj_id)
        prompt = Prompt.make(entry.get("points"), entry.get("labels"), entry.get("box"), mask, where=where)
        out.append(FramePrompt(frame, obj_id, prompt))
    return out


def write_prompt_file(path: str | os.PathLike, prompts: list[FramePrompt]) -> Path:
    """``prompts``, in their order, as a JSON file that :func:`read_prompt_file` (``vos track --prompts``) reads
    back to the same values: clicks and boxes as numbers (float32 values print exactly), each mask as a
    0/255 PNG in ``<name>-masks/`` beside the file, named by the prompt's place in the list. The masks are
    written to a hidden folder first and swapped in with the file, so that a failure leaves an earlier file
    of that name and its masks as they were."""
    import json
    import shutil

    from streams.files import atomic_write, new_folder
    from streams.masks import write_binary_png

    path = Path(path)
    mask_dir = path.parent / f"{path.stem}-masks"
    staging = new_folder(path.parent, f".{mask_dir.name}.")
    previous = staging.with_name(staging.name + ".previous")
    try:
        entries = []
        for i, p in enumerate(prompts):
            entry = {"frame": int(p.frame), "obj_id": int(p.obj_id)}
            prompt = p.prompt
            if prompt.mask is not None:
                name = f"{i:04d}-frame{p.frame}-obj{p.obj_id}.png"
                write_binary_png(staging / name, prompt.mask)
                entry["mask"] = f"{mask_dir.name}/{name}"
            if prompt.points is not None:
                entry["points"] = [[float(x), float(y)] for x, y in prompt.points]
                entry["labels"] = [int(v) for v in prompt.labels]
            if prompt.box is not None:
                entry["box"] = [float(v) for v in prompt.box]
            entries.append(entry)
        text = "[\n" + ",\n".join(" " + json.dumps(e) for e in entries) + "\n]\n"  # a prompt a line
        if mask_dir.is_dir():
            mask_dir.rename(previous)
        if any(staging.iterdir()):
            staging.rename(mask_dir)
        try:
            return atomic_write(path, lambda tmp: tmp.write_text(text))
        except BaseException:
            if previous.is_dir():  # the earlier file stays, with its own masks
                shutil.rmtree(mask_dir, ignore_errors=True)
                previous.rename(mask_dir)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)


def merge_prompts(prompts: list[FramePrompt]) -> list[FramePrompt]:
    """One prompt per object and frame, in first-seen order, each object's prompts there joined by
    :meth:`Prompt.then` in the order given."""
    merged: dict[tuple[int, int], Prompt] = {}
    for p in prompts:
        key = (p.frame, p.obj_id)
        old = merged.get(key)
        merged[key] = p.prompt if old is None else old.then(p.prompt, f"object {p.obj_id}, frame {p.frame}")
    return [FramePrompt(frame, obj_id, prompt) for (frame, obj_id), prompt in merged.items()]
