"""Automatic mask generation ("segment everything"): a grid of clicks, quality and stability filters and
de-duplication, with the records of SAM 2's ``SAM2AutomaticMaskGenerator``.

For every crop (the whole image, plus ``crop_n_layers`` layers of overlapping crops) the image is encoded
once and a grid of single clicks goes through the decoder ``points_per_batch`` at a time; each click gives
up to three candidate masks. A candidate is kept when its predicted IoU exceeds ``pred_iou_thresh`` and its
stability (the IoU of the mask thresholded at ``mask_threshold ± stability_score_offset``) reaches
``stability_score_thresh``; masks touching a crop's inner edge are dropped; box non-maximum suppression
removes duplicates within a crop (by predicted IoU) and then between crops (preferring smaller crops).

Where the filters sit depends on how a model's scores are calibrated: ``pred_iou_thresh``,
``stability_score_thresh`` and ``stability_score_offset`` left out (``None``) are the model's
(:class:`vos.model.config.GeneratorDefaults`; SAM 2's 0.8 / 0.95 / 1.0 for official checkpoints). Every run counts
what became of its candidates (:class:`FilterCounts`), so a run that keeps nothing can say which filter removed them.

The results equal the official generator's, in the same order. Two things are done more cheaply: the
predicted-IoU filter runs before the masks are upscaled to the image, and the upscaled masks are handled a
few at a time, so memory stays at a few full-size masks instead of ``3 x points_per_batch`` of them.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torchvision.ops import batched_nms, box_area
from tqdm import tqdm

from ..model.image_encoder import ImageFeatures
from ..model.sam2 import SAM2Model
from .predictor import LOW_RES_LOGIT_LIMIT, ImagePredictor, image_array

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
# Candidate masks upscaled to the image at once: bounds memory on large images.
_UPSCALE_CHUNK = 16
# Masks whose box comes this close (pixels) to a crop's inner edge are cut off by the crop.
_CROP_EDGE_TOLERANCE = 20.0


# ---------------------------------------------------------------------- grids and crops
def point_grid(n_per_side: int) -> np.ndarray:
    """``(n^2, 2)`` points ``(x, y)`` in ``[0, 1]``, at the centres of an ``n x n`` grid of cells, x fastest."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def crop_boxes(size: tuple[int, int], n_layers: int, overlap_ratio: float) -> list[tuple[list[int], int]]:
    """The whole image, then ``(2^(i+1))^2`` overlapping crops for each layer ``i``: ``([x0, y0, x1, y1],
    layer)`` pairs, in SAM's order."""
    h, w = size
    out = [([0, 0, w, h], 0)]
    for layer in range(n_layers):
        per_side = 2 ** (layer + 1)
        overlap = int(overlap_ratio * min(h, w) * (2 / per_side))
        crop_w = int(math.ceil((overlap * (per_side - 1) + w) / per_side))
        crop_h = int(math.ceil((overlap * (per_side - 1) + h) / per_side))
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0 in x0s:
            for y0 in y0s:
                out.append(([x0, y0, min(x0 + crop_w, w), min(y0 + crop_h, h)], layer + 1))
    return out


# ---------------------------------------------------------------------- masks, boxes, RLE
def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """``(N, H, W)`` boolean -> ``(N, 4)`` int64 boxes ``x0, y0, x1, y1`` of the first and last rows and
    columns that hold the mask (inclusive); ``[0, 0, 0, 0]`` for an empty mask."""
    n, h, w = masks.shape
    if n == 0:
        return torch.zeros(0, 4, dtype=torch.int64, device=masks.device)
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (N, H), (N, W)
    ys, xs = torch.arange(h, device=masks.device), torch.arange(w, device=masks.device)
    top = torch.where(rows, ys, h).min(dim=1).values
    bottom = torch.where(rows, ys, -1).max(dim=1).values
    left = torch.where(cols, xs, w).min(dim=1).values
    right = torch.where(cols, xs, -1).max(dim=1).values
    boxes = torch.stack([left, top, right, bottom], dim=1)
    return torch.where(rows.any(dim=1, keepdim=True), boxes, 0)


def mask_to_rle(mask: np.ndarray) -> dict:
    """``(H, W)`` boolean -> uncompressed COCO RLE ``{"size": [H, W], "counts": [...]}``: run lengths in
    column-major order, starting with a run of background (possibly 0)."""
    h, w = mask.shape
    flat = mask.T.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [h * w]])).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [h, w], "counts": counts}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Uncompressed COCO RLE -> ``(H, W)`` boolean mask."""
    h, w = rle["size"]
    values = np.zeros(len(rle["counts"]), bool)
    values[1::2] = True
    return np.repeat(values, rle["counts"]).reshape(w, h).T


def rle_area(rle: dict) -> int:
    return int(sum(rle["counts"][1::2]))


def compress_rle(rle: dict) -> dict:
    """Uncompressed -> compressed COCO RLE (``counts`` as the string pycocotools writes): each count, minus
    the one two places before it from the fourth on, in little-endian groups of 5 bits with a
    continuation bit, offset by 48 into printable characters."""
    counts = rle["counts"]
    chars = []
    for i, count in enumerate(counts):
        x = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic shift: negative differences end at -1
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr(c + 48 + (0x20 if more else 0)))
    return {"size": list(rle["size"]), "counts": "".join(chars)}


def xywh(box) -> list[float]:
    """``x0, y0, x1, y1`` -> ``[x, y, w, h]`` floats (SAM's records)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return [x0, y0, x1 - x0, y1 - y0]


# ---------------------------------------------------------------------- settings and counts
def generator_setting(model: SAM2Model, name: str, value: Any = None) -> Any:
    """The generator setting ``name`` (a field of :class:`vos.model.config.GeneratorDefaults`) for ``model``:
    ``value`` when given, else the model config's default."""
    return getattr(model.config.generator, name) if value is None else value


@dataclass
class FilterCounts:
    """What became of one image's candidate masks (one per click and decoder output): each is counted once,
    under the first filter that removed it (in the order below), or as kept, so the counts add up to
    ``candidates``. ``pred_iou_thresh`` and ``stability_score_thresh`` are the filters it counted against;
    ``best_pred_iou`` and ``best_stability`` the highest scores the candidates that reached each filter had
    (where a threshold would let some through). Counts of several runs add up with ``+``."""

    pred_iou_thresh: float
    stability_score_thresh: float
    candidates: int = 0
    below_pred_iou: int = 0
    below_stability: int = 0
    at_crop_edge: int = 0  # cut off by the inner edge of a crop
    duplicates: int = 0  # box non-maximum suppression, within a crop and then between crops
    kept: int = 0
    best_pred_iou: float = 0.0
    best_stability: float = 0.0

    def __add__(self, other: FilterCounts) -> FilterCounts:
        return dataclasses.replace(self, **{name: getattr(self, name) + getattr(other, name) for name in _COUNTS},
                                   best_pred_iou=max(self.best_pred_iou, other.best_pred_iou),
                                   best_stability=max(self.best_stability, other.best_stability))

    def removed(self) -> dict[str, int]:
        """How many each filter removed, in words (``"below predicted IoU 0.8 (best 0.69)"``), for those that
        removed any."""
        words = {"below_pred_iou": f"below predicted IoU {self.pred_iou_thresh:g} (best {self.best_pred_iou:.2f})",
                 "below_stability": f"below stability {self.stability_score_thresh:g} (best {self.best_stability:.2f})",
                 "at_crop_edge": "cut by a crop's edge", "duplicates": "duplicates"}
        return {text: getattr(self, name) for name, text in words.items() if getattr(self, name)}

    def line(self, option: Callable[[str], str] = str) -> str:
        """``"0 masks kept of 3072 candidates: 2950 below predicted IoU 0.8 (best 0.84), 122 below stability 0.95
        (best 0.91); lower pred_iou_thresh / stability_score_thresh"``: the advice, only when nothing is kept, names the
        thresholds that removed candidates, each as ``option`` spells it (``--pred-iou-thresh`` on the command
        line)."""
        text = f"{self.kept} mask{'s' * (self.kept != 1)} kept of {self.candidates} candidates"
        removed = self.removed()
        if removed:
            text += ": " + ", ".join(f"{n} {what}" for what, n in removed.items())
        lower = [option(name) for name, count in (("pred_iou_thresh", self.below_pred_iou),
                                                  ("stability_score_thresh", self.below_stability)) if count]
        if not self.kept and lower:
            text += "; lower " + " / ".join(lower)
        return text


_COUNTS = ("candidates", "below_pred_iou", "below_stability", "at_crop_edge", "duplicates", "kept")


@dataclass
class GeneratorResult:
    """One image's masks (SAM's records, best first) and what became of its candidates."""

    masks: list[dict]
    counts: FilterCounts


# ---------------------------------------------------------------------- the generator
class _Masks:
    """Kept candidates of one crop: tensors with one row per mask, and their RLEs."""

    def __init__(self) -> None:
        self.parts: dict[str, list[torch.Tensor]] = {"boxes": [], "ious": [], "points": [], "stability": []}
        self.rles: list[dict] = []

    def add(self, boxes, ious, points, stability, rles) -> None:
        for key, value in zip(self.parts, (boxes, ious, points, stability)):
            self.parts[key].append(value)
        self.rles.extend(rles)

    def tensors(self) -> dict[str, torch.Tensor]:
        empty = {"boxes": torch.zeros(0, 4, dtype=torch.int64), "ious": torch.zeros(0), "points": torch.zeros(0, 2),
                 "stability": torch.zeros(0)}
        return {k: torch.cat(v) if v else empty[k] for k, v in self.parts.items()}


class MaskGenerator:
    """Segment everything in an image. Arguments are those of SAM 2's automatic generator, and so are the
    defaults, except the filters that depend on the model's calibration: left out (``None``), they are the
    model config's (:func:`generator_setting`).

    Args:
        model: the SAM 2 model.
        points_per_side: clicks per side of the grid (``points_per_side^2`` clicks); or ``point_grids``,
            one ``(K, 2)`` array of points in ``[0, 1]`` per crop layer.
        points_per_batch: clicks through the decoder at once.
        pred_iou_thresh: keep masks whose predicted IoU is above this (0: no filter; default: the model's,
            0.8 for SAM 2 checkpoints).
        stability_score_thresh, stability_score_offset: keep masks whose stability is at least this (default:
            the model's, 0.95 and 1.0 for SAM 2 checkpoints).
        mask_threshold: logit threshold of the masks.
        box_nms_thresh: box IoU above which a mask duplicates a better one of the same crop.
        crop_n_layers, crop_nms_thresh, crop_overlap_ratio, crop_n_points_downscale_factor: crops of the
            image run again (layer ``i`` has ``(2^i)^2`` crops, with ``points_per_side /
            factor^i`` clicks a side), de-duplicated between crops at ``crop_nms_thresh``.
        min_mask_region_area: remove holes and specks of at most this many low-resolution pixels.
        output_mode: ``"binary_mask"`` (``(H, W)`` bool), ``"uncompressed_rle"`` or ``"coco_rle"``.
        use_m2m: refine each candidate once with its own low-resolution mask as a mask prompt.
        multimask_output: three candidates per click (or one).
        progress: show a progress bar over the decoder batches.
    """

    def __init__(
        self,
        model: SAM2Model,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float | None = None,
        stability_score_thresh: float | None = None,
        stability_score_offset: float | None = None,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
        progress: bool = False,
    ) -> None:
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("give exactly one of points_per_side and point_grids")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"unknown output_mode {output_mode!r}; use one of {OUTPUT_MODES}")
        if points_per_batch < 1:
            raise ValueError(f"points_per_batch must be at least 1, got {points_per_batch}")
        if crop_n_layers < 0:
            raise ValueError(f"crop_n_layers must be 0 or more, got {crop_n_layers}")
        if points_per_side is not None:
            if points_per_side < 1:
                raise ValueError(f"points_per_side must be at least 1, got {points_per_side}")
            point_grids = [point_grid(int(points_per_side / crop_n_points_downscale_factor ** i))
                           for i in range(crop_n_layers + 1)]
        elif len(point_grids) < crop_n_layers + 1:
            raise ValueError(f"point_grids has {len(point_grids)} grids; crop_n_layers={crop_n_layers} needs "
                             f"{crop_n_layers + 1}")
        self.point_grids = [np.asarray(g, np.float64).reshape(-1, 2) for g in point_grids]
        self.predictor = ImagePredictor(model, max_hole_area=min_mask_region_area,
                                        max_sprinkle_area=min_mask_region_area)
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = generator_setting(model, "pred_iou_thresh", pred_iou_thresh)
        self.stability_score_thresh = generator_setting(model, "stability_score_thresh", stability_score_thresh)
        self.stability_score_offset = generator_setting(model, "stability_score_offset", stability_score_offset)
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output
        self.progress = progress

    # ------------------------------------------------------------------ entry points
    def generate(self, image) -> list[dict]:
        """Every mask of an ``(H, W, 3)`` uint8 RGB image (numpy or PIL), as SAM's records: ``segmentation``,
        ``area``, ``bbox`` (x, y, w, h), ``predicted_iou``, ``point_coords`` ([[x, y]]),
        ``stability_score``, ``crop_box`` (x, y, w, h); best-first as the de-duplication leaves them."""
        return self.run(image).masks

    def generate_from_features(self, features: ImageFeatures, size: tuple[int, int]) -> list[dict]:
        """The same from a frame already encoded by :meth:`SAM2Model.encode_image` (batch 1) of ``size =
        (H, W)``, e.g. a tracker's; the image encoder does not run again. Without crops only."""
        return self.run_from_features(features, size).masks

    def run(self, image) -> GeneratorResult:
        """:meth:`generate`'s masks, with the counts of what each filter removed."""
        image = image_array(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.dtype} {image.shape}")

        def encode(box: list[int]) -> None:
            x0, y0, x1, y1 = box
            self.predictor.set_image(image[y0:y1, x0:x1])

        return self._generate(tuple(image.shape[:2]), encode)

    def run_from_features(self, features: ImageFeatures, size: tuple[int, int]) -> GeneratorResult:
        """:meth:`generate_from_features`'s masks, with the counts of what each filter removed."""
        if self.crop_n_layers:
            raise ValueError("generate_from_features cannot make crops (crop_n_layers > 0): use generate(image)")
        return self._generate(tuple(size), lambda box: self.predictor.set_features(features, [size]))

    # ------------------------------------------------------------------ the pipeline
    def _generate(self, size: tuple[int, int], encode: Callable[[list[int]], None]) -> GeneratorResult:
        counts = FilterCounts(self.pred_iou_thresh, self.stability_score_thresh)
        crops = crop_boxes(size, self.crop_n_layers, self.crop_overlap_ratio)
        total = sum(math.ceil(len(self.point_grids[layer]) / self.points_per_batch) for _, layer in crops)
        bar = tqdm(total=total, desc="masks", unit="batch", disable=not self.progress)
        parts, rles, crop_rows = [], [], []
        try:
            for box, layer in crops:
                encode(box)
                data, crop_rles = self._crop(box, layer, size, bar, counts)
                self.predictor.reset()
                parts.append(data)
                rles.extend(crop_rles)
                crop_rows.append(torch.tensor([box] * len(crop_rles), dtype=torch.int64).reshape(-1, 4))
        finally:
            bar.close()
        data = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        data["crop_boxes"] = torch.cat(crop_rows)
        if len(crops) > 1:
            # Between crops, the mask of the smaller crop wins.
            scores = 1 / box_area(data["crop_boxes"])
            keep = batched_nms(data["boxes"].float(), scores, torch.zeros(len(scores)), self.crop_nms_thresh)
            counts.duplicates += len(rles) - len(keep)
            data = {k: v[keep] for k, v in data.items()}
            rles = [rles[i] for i in keep.tolist()]
        counts.kept = len(rles)
        return GeneratorResult(self._records(data, rles), counts)

    def _crop(self, box: list[int], layer: int, size: tuple[int, int], bar,
              counts: FilterCounts) -> tuple[dict, list[dict]]:
        """Candidates of one crop, filtered and de-duplicated, in image coordinates."""
        x0, y0, x1, y1 = box
        crop_h, crop_w = y1 - y0, x1 - x0
        # Grid points in crop pixels, in float64 then float32, as SAM computes them.
        points = torch.as_tensor(self.point_grids[layer] * np.array([[crop_w, crop_h]]), dtype=torch.float32)
        kept = _Masks()
        for start in range(0, len(points), self.points_per_batch):
            self._batch(points[start : start + self.points_per_batch], box, size, kept, counts)
            bar.update(1)
        data = kept.tensors()
        keep = batched_nms(data["boxes"].float(), data["ious"], torch.zeros(len(data["ious"])), self.box_nms_thresh)
        counts.duplicates += len(data["ious"]) - len(keep)
        data = {k: v[keep] for k, v in data.items()}
        offset = torch.tensor([x0, y0])
        data["boxes"] = data["boxes"] + offset.repeat(2)
        data["points"] = data["points"] + offset
        return data, [kept.rles[i] for i in keep.tolist()]

    def _batch(self, points: torch.Tensor, box: list[int], size: tuple[int, int], kept: _Masks,
               counts: FilterCounts) -> None:
        """Decode ``points (b, 2)`` (crop pixels) and add the candidates that pass the filters to ``kept``,
        counting the others in ``counts``."""
        predictor = self.predictor
        crop_h, crop_w = box[3] - box[1], box[2] - box[0]
        device = predictor.device
        coords = (points / torch.tensor([crop_w, crop_h], dtype=torch.float32) * predictor.model.image_size)
        coords = coords[:, None].to(device)
        labels = torch.ones(len(points), 1, dtype=torch.int32, device=device)
        low_res, ious = predictor.predict_logits(coords, labels, None, self.multimask_output)
        per_point = low_res.shape[1]
        low_res, ious = low_res.flatten(0, 1), ious.flatten(0, 1)
        points = points.repeat_interleave(per_point, dim=0)
        counts.candidates += len(ious)
        if self.use_m2m:
            low_res, ious = self._refine(coords.repeat_interleave(per_point, dim=0), low_res)
        if len(ious):
            counts.best_pred_iou = max(counts.best_pred_iou, float(ious.max()))
        if self.pred_iou_thresh > 0.0:
            keep = (ious > self.pred_iou_thresh).cpu()
            counts.below_pred_iou += int((~keep).sum())
            low_res, ious, points = low_res[keep.to(device)], ious[keep.to(device)], points[keep]
        for start in range(0, len(low_res), _UPSCALE_CHUNK):
            part = slice(start, start + _UPSCALE_CHUNK)
            self._keep_stable(low_res[part], ious[part].float().cpu(), points[part], box, size, kept, counts)

    def _refine(self, coords: torch.Tensor, low_res: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One more decoder pass per candidate with its clamped low-resolution logits as a mask prompt."""
        labels = torch.ones(len(coords), 1, dtype=torch.int32, device=coords.device)
        masks, ious = [], []
        prompts = low_res.clamp(-LOW_RES_LOGIT_LIMIT, LOW_RES_LOGIT_LIMIT)[:, None]
        for start in range(0, len(coords), self.points_per_batch):
            part = slice(start, start + self.points_per_batch)
            m, iou = self.predictor.predict_logits(coords[part], labels[part], prompts[part], False)
            masks.append(m[:, 0])
            ious.append(iou[:, 0])
        return torch.cat(masks), torch.cat(ious)

    def _keep_stable(self, low_res, ious, points, box, size, kept: _Masks, counts: FilterCounts) -> None:
        """Upscale a few candidates ``(k, h, w)``, filter them by stability and crop edges, and add them."""
        logits = self.predictor.upscale(low_res[:, None])[:, 0]
        offset = self.stability_score_offset
        # Counts in int64 (SAM sums rows in int16, which overflows only on images over 32767 px wide).
        inter = (logits > self.mask_threshold + offset).flatten(1).sum(1)
        union = (logits > self.mask_threshold - offset).flatten(1).sum(1)
        stability = (inter / union).float().cpu()
        keep = stability >= self.stability_score_thresh if self.stability_score_thresh > 0.0 else \
            torch.ones(len(stability), dtype=torch.bool)
        counts.below_stability += int((~keep).sum())
        if len(stability):  # an empty mask's stability is 0 / 0
            counts.best_stability = max(counts.best_stability, float(stability.nan_to_num(0.0).max()))
        masks = (logits > self.mask_threshold).cpu()[keep]
        ious, points, stability = ious[keep], points[keep], stability[keep]
        boxes = masks_to_boxes(masks)
        # Drop masks cut by the crop's inner edges (edges of the image itself are fine).
        x0, y0 = box[0], box[1]
        h, w = size
        shifted = (boxes + torch.tensor([x0, y0, x0, y0])).float()
        near_crop = torch.isclose(shifted, torch.tensor(box, dtype=torch.float32)[None], atol=_CROP_EDGE_TOLERANCE, rtol=0)
        near_image = torch.isclose(shifted, torch.tensor([0.0, 0.0, w, h])[None], atol=_CROP_EDGE_TOLERANCE, rtol=0)
        inside = ~(near_crop & ~near_image).any(dim=1)
        counts.at_crop_edge += int((~inside).sum())
        masks, boxes = masks[inside], boxes[inside]
        rles = []
        for mask in masks.numpy():
            full = np.zeros((h, w), bool)
            full[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]] = mask
            rles.append(mask_to_rle(full))
        kept.add(boxes, ious[inside], points[inside], stability[inside], rles)

    def _records(self, data: dict[str, torch.Tensor], rles: list[dict]) -> list[dict]:
        records = []
        for i, rle in enumerate(rles):
            if self.output_mode == "binary_mask":
                segmentation = rle_to_mask(rle)
            elif self.output_mode == "coco_rle":
                segmentation = compress_rle(rle)
            else:
                segmentation = rle
            records.append({
                "segmentation": segmentation,
                "area": rle_area(rle),
                "bbox": xywh(data["boxes"][i].tolist()),
                "predicted_iou": float(data["ious"][i]),
                "point_coords": [[float(v) for v in data["points"][i]]],
                "stability_score": float(data["stability"][i]),
                "crop_box": xywh(data["crop_boxes"][i].tolist()),
            })
        return records
