"""Pre- and post-processing around the model: frames in, masks at the video's resolution out."""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .sam2 import NO_OBJ_SCORE

PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)


RESIZES = ("fast", "pil")


def preprocess(
    image: np.ndarray | torch.Tensor, size: int, device: torch.device | str = "cpu", resize: str = "fast"
) -> torch.Tensor:
    """``(H, W, 3)`` RGB ``uint8`` -> ``(1, 3, size, size)`` normalised float32.

    The frame is squashed to a square as SAM 2 does (no padding). ``resize="fast"`` resamples with
    antialiased bicubic in 8 bits (torch's uint8 kernel, about 8x faster than resampling floats and
    rounding); ``"pil"`` with PIL's bicubic resize, as the official video predictor's frame loader does,
    which gives its pixels exactly, 3-4x slower. On DAVIS frames the two differ by at most 2 grey levels
    (0.002-0.005 on average, at 1024 and 256 px; ``benchmarks/resize_modes.py``).
    """
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {tuple(image.shape)}")
    if resize not in RESIZES:
        raise ValueError(f"resize must be one of {RESIZES}, got {resize!r}")
    if tuple(image.shape[:2]) != (size, size) and resize == "pil":
        image = pil_resize(image, size)
    if isinstance(image, np.ndarray) and not image.flags.writeable:
        image = image.copy()  # torch cannot wrap read-only memory (decoded frames often are)
    x = torch.as_tensor(image).to(device).permute(2, 0, 1)[None]
    if x.shape[-2:] != (size, size):
        if x.dtype == torch.uint8 and x.device.type == "cpu":
            x = F.interpolate(x.contiguous(memory_format=torch.channels_last), size=(size, size), mode="bicubic",
                              align_corners=False, antialias=True)
        else:
            x = F.interpolate(x.float(), size=(size, size), mode="bicubic", align_corners=False, antialias=True)
            x = x.round().clamp(0, 255)
    x = x.float().contiguous()
    mean = torch.tensor(PIXEL_MEAN, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=x.device).reshape(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


def pil_resize(image: np.ndarray | torch.Tensor, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(size, size, 3)`` uint8 by PIL's bicubic resampling."""
    from PIL import Image

    if isinstance(image, torch.Tensor):
        image = image.cpu().numpy()
    if image.dtype != np.uint8:
        raise ValueError(f"resize='pil' takes uint8 RGB images, got {image.dtype}")
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((size, size), Image.Resampling.BICUBIC))


def to_video_resolution(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, 1, h, w)`` low-resolution logits -> ``(N, 1, H, W)`` bilinear, as the official predictor."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def non_overlapping(logits: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)``: where an object is not the highest-scoring one, clamp its logit to at most -10,
    so that every pixel belongs to at most one object (as DAVIS-format outputs need)."""
    if logits.shape[0] <= 1:
        return logits
    winner = logits.argmax(dim=0, keepdim=True)
    ids = torch.arange(logits.shape[0], device=logits.device)[:, None, None, None]
    return torch.where(winner == ids, logits, logits.clamp(max=-10.0))


def preprocess_image(image: np.ndarray, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(H, W, 3)`` RGB ``uint8`` -> ``(1, 3, size, size)`` normalised float32, as SAM 2's image predictor
    prepares a still image: scaled to ``[0, 1]`` first, then squashed to the square with antialiased
    bilinear resampling in float (torchvision's ``Resize`` on tensors), then normalised. Video frames go
    through :func:`preprocess` instead, which follows the video predictor's frame loader."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {tuple(image.shape)}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image (values 0-255), got {image.dtype}")
    if not image.flags.writeable:
        image = image.copy()  # torch cannot wrap read-only memory (decoded images often are)
    # Channels-first and contiguous before resampling: interpolate takes another kernel on other layouts.
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1).contiguous().float() / 255.0
    x = x[None]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(PIXEL_MEAN, device=x.device).reshape(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=x.device).reshape(1, 3, 1, 1)
    return (x - mean) / std


def small_regions(masks: torch.Tensor, max_area: int) -> torch.Tensor:
    """``(..., h, w)`` boolean -> boolean, the pixels of the 8-connected components of each mask whose
    area is at most ``max_area`` pixels."""
    flat = masks.reshape(-1, *masks.shape[-2:]).cpu().numpy().astype(np.uint8)
    out = np.zeros(flat.shape, bool)
    for i, mask in enumerate(flat):
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        small = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] <= max_area) + 1
        if small.size:
            out[i] = np.isin(labels, small)
    return torch.from_numpy(out).reshape(masks.shape).to(masks.device)


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Set background holes of at most ``max_area`` pixels (8-connected components of ``logits <= 0``)
    to a small positive logit (0.1), as the official post-processing does. ``(N, 1, h, w)``."""
    if max_area <= 0:
        return logits
    return torch.where(small_regions(logits <= 0, max_area), torch.full_like(logits, 0.1), logits)


def remove_small_regions(logits: torch.Tensor, max_hole_area: int, max_sprinkle_area: int,
                         threshold: float = 0.0) -> torch.Tensor:
    """The image predictor's post-processing of ``(N, M, h, w)`` logits: background holes of at most
    ``max_hole_area`` pixels become ``threshold + 10`` and foreground specks of at most ``max_sprinkle_area``
    pixels ``threshold - 10``; both are found on the input logits."""
    out = logits.float()
    if max_hole_area > 0:
        out = torch.where(small_regions(logits <= threshold, max_hole_area), threshold + 10.0, out)
    if max_sprinkle_area > 0:
        out = torch.where(small_regions(logits > threshold, max_sprinkle_area), threshold - 10.0, out)
    return out


def empty_logits(count: int, size: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """``(count, 1, H, W)`` logits of objects with no output on a frame."""
    return torch.full((count, 1, *size), NO_OBJ_SCORE, device=device)


def output_logits(low_res: torch.Tensor, size: tuple[int, int], non_overlap: bool) -> torch.Tensor:
    """Every object's ``(N, 1, h, w)`` decoder logits as the frame's output: ``(N, 1, H, W)`` at the video's
    resolution, made non-overlapping when asked."""
    logits = to_video_resolution(low_res, size)
    return non_overlapping(logits) if non_overlap else logits
