"""User prompts (clicks, a box, a mask) for one object on one frame, checked and put in model coordinates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


class PromptError(ValueError):
    """A prompt that cannot be used; the message says which object, frame and value."""


@dataclass(frozen=True)
class Prompt:
    """Clicks and/or a box, or a mask, in video pixels.

    ``points (N, 2)`` are ``(x, y)``; ``labels (N,)`` are 1 (object) or 0 (background), all 1 when omitted;
    ``box`` is ``(x1, y1, x2, y2)``; ``mask (H, W)`` is a boolean mask of the whole frame.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    @classmethod
    def make(cls, points=None, labels=None, box=None, mask=None) -> "Prompt":
        """Build a prompt from lists, arrays or tensors."""
        if points is not None:
            points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
            labels = np.ones(len(points), np.int32) if labels is None else np.asarray(labels, np.int32).reshape(-1)
        elif labels is not None and len(np.asarray(labels).reshape(-1)):
            raise PromptError("labels were given without points")
        else:
            labels = None
        box = None if box is None else np.asarray(box, dtype=np.float32).reshape(-1)
        mask = None if mask is None else np.asarray(mask).astype(bool)
        return cls(points, labels, box, mask)

    @property
    def num_points(self) -> int:
        """Points as the decoder sees them: clicks, plus two corners for a box."""
        return (0 if self.points is None else len(self.points)) + (2 if self.box is not None else 0)

    def check(self, size: tuple[int, int], where: str) -> None:
        """Raise :class:`PromptError` unless the prompt fits a frame of ``size = (H, W)``. ``where`` names
        the object and frame in messages."""
        h, w = size
        if self.mask is not None:
            if self.points is not None or self.box is not None:
                raise PromptError(f"{where}: give either a mask or clicks/a box, not both")
            if self.mask.shape != (h, w):
                raise PromptError(f"{where}: mask is {self.mask.shape[1]}x{self.mask.shape[0]}, the video is {w}x{h}")
            if not self.mask.any():
                raise PromptError(f"{where}: mask is empty (remove the object instead)")
            return
        if self.points is None and self.box is None:
            raise PromptError(f"{where}: no clicks, box or mask")
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
            if x2 <= x1 or y2 <= y1:
                raise PromptError(f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has zero area")

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
