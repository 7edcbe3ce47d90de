"""The image predictor: SAM on still images, from clicks, boxes and mask prompts, features cached per image.

It runs the same per-frame pieces as the trackers (:meth:`SAM2Model.encode_image`,
:meth:`SAM2Model.without_memory`, :meth:`SAM2Model.decode`) and reproduces SAM 2's ``SAM2ImagePredictor``:
the image is prepared as that predictor does (:func:`vos.model.transforms.preprocess_image`), the decoder's
logits are not gated by the presence score, and masks are upscaled to the image after the optional
hole and speck removal on the low-resolution logits.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model.image_encoder import ImageFeatures
from ..model.sam2 import SAM2Model
from ..model.transforms import preprocess_image, remove_small_regions

# The low-resolution logits returned are clamped to this range (they feed back as mask prompts).
LOW_RES_LOGIT_LIMIT = 32.0


@dataclass
class _Embedding:
    """Decoder inputs of ``N`` images: ``features (N, C, h, w)`` with ``no_mem_embed`` added, the two
    high-resolution levels ``[(N, C/8, 4h, 4w), (N, C/4, 2h, 2w)]`` and each image's ``(H, W)``."""

    features: torch.Tensor
    high_res: list[torch.Tensor]
    sizes: list[tuple[int, int]]


def image_array(image) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array from a numpy array or a PIL image."""
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        raise TypeError("give the image as an (H, W, 3) uint8 numpy array or a PIL image, not a tensor")
    return np.asarray(image)


class ImagePredictor:
    """Segment objects in images from prompts; the image encoder runs once per :meth:`set_image`.

    Example::

        predictor = ImagePredictor(model)
        predictor.set_image(image)                          # (H, W, 3) uint8 RGB
        masks, ious, low_res = predictor.predict(points=[[210, 350]], labels=[1])
        masks, ious, low_res = predictor.predict(box=[300, 0, 500, 400], multimask_output=False)

    Args:
        model: the SAM 2 model (its config's ``dynamic_multimask_via_stability`` is SAM 2's post-processing).
        mask_threshold: logit above which a pixel is in the mask.
        max_hole_area, max_sprinkle_area: remove background holes and foreground specks of at most this
            many pixels of the low-resolution logits before upscaling (0: off).
    """

    def __init__(
        self, model: SAM2Model, *, mask_threshold: float = 0.0, max_hole_area: int = 0, max_sprinkle_area: int = 0
    ) -> None:
        self.model = model.eval()
        self.mask_threshold = float(mask_threshold)
        self.max_hole_area = int(max_hole_area)
        self.max_sprinkle_area = int(max_sprinkle_area)
        self._embedding: _Embedding | None = None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    @property
    def image_sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` of each image set."""
        return list(self._require().sizes)

    def reset(self) -> None:
        """Forget the images and their features."""
        self._embedding = None

    # ------------------------------------------------------------------ images
    def set_image(self, image) -> None:
        """Encode one ``(H, W, 3)`` uint8 RGB image (numpy array or PIL image) for the next predictions."""
        self.set_image_batch([image])

    @torch.inference_mode()
    def set_image_batch(self, images: Sequence) -> None:
        """Encode several images in one batch; :meth:`predict` then takes ``image_index``."""
        if isinstance(images, np.ndarray) or not len(images):
            raise ValueError("set_image_batch takes a non-empty list of (H, W, 3) images")
        self.reset()
        arrays = [image_array(image) for image in images]
        size = self.model.image_size
        batch = torch.cat([preprocess_image(a, size, self.device) for a in arrays])
        self.set_features(self.model.encode_image(batch), [tuple(a.shape[:2]) for a in arrays])

    @torch.inference_mode()
    def set_features(self, features: ImageFeatures, sizes: Sequence[tuple[int, int]]) -> None:
        """Use images already encoded by :meth:`SAM2Model.encode_image` (a tracker's frame, say):
        ``features`` of batch ``N`` and the ``(H, W)`` of each image."""
        vision = features.vision_features
        if vision.shape[0] != len(sizes):
            raise ValueError(f"{vision.shape[0]} encoded images but {len(sizes)} image sizes")
        # Images have no memory: SAM 2 adds the no-memory embedding, as on a video's first prompted frame.
        self._embedding = _Embedding(
            self.model.without_memory(vision), features.high_res_features, [tuple(s) for s in sizes]
        )

    def _require(self) -> _Embedding:
        if self._embedding is None:
            raise RuntimeError("no image is set: call set_image(...) or set_image_batch(...) first")
        return self._embedding

    def _check_index(self, image_index: int) -> int:
        """The index as a position in ``0..N-1`` (negative counts from the end)."""
        count = len(self._require().sizes)
        if not -count <= image_index < count:
            raise IndexError(f"image_index {image_index} is out of range: {count} image(s) are set")
        return image_index % count

    @property
    def embedding(self) -> torch.Tensor:
        """``(N, C, h, w)`` stride-16 features of the images set, with the no-memory embedding added."""
        return self._require().features

    # ------------------------------------------------------------------ prompts
    def _prompt_tensors(
        self, points, labels, box, mask_input, normalize_coords: bool, image_index: int
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """User prompts -> ``coords (B, N, 2)`` in model pixels (box corners first, labelled 2 and 3),
        ``labels (B, N)`` and ``mask_input (B, 1, h, w)``."""
        h, w = self._require().sizes[image_index]
        size = self.model.image_size
        # Pixels are divided by the image size and then scaled to the model's, as SAM 2 does (same rounding).
        scale = torch.tensor([w, h], dtype=torch.float32) if normalize_coords else torch.ones(2)
        coords, point_labels = [], []
        if box is not None:
            box = torch.as_tensor(np.asarray(box, np.float32))
            if box.shape[-1] != 4 or box.ndim > 2:
                raise ValueError(f"box must be (4,) or (B, 4) as x1, y1, x2, y2; got shape {tuple(box.shape)}")
            corners = box.reshape(-1, 2, 2)
            coords.append(corners)
            point_labels.append(torch.tensor([[2, 3]], dtype=torch.int32).expand(corners.shape[0], -1))
        if points is not None:
            xy = torch.as_tensor(np.asarray(points, np.float32))
            if xy.shape[-1] != 2 or xy.ndim not in (2, 3):
                raise ValueError(f"points must be (N, 2) or (B, N, 2) as x, y; got shape {tuple(xy.shape)}")
            lab = torch.ones(xy.shape[:-1], dtype=torch.int32) if labels is None else \
                torch.as_tensor(np.asarray(labels)).to(torch.int32)
            if lab.shape != xy.shape[:-1]:
                raise ValueError(f"{tuple(xy.shape[:-1])} points but labels of shape {tuple(lab.shape)}")
            if xy.ndim == 2:
                xy, lab = xy[None], lab[None]
            coords.append(xy)
            point_labels.append(lab)
        elif labels is not None:
            raise ValueError("labels were given without points")
        if len(coords) == 2 and coords[0].shape[0] != coords[1].shape[0]:
            raise ValueError(f"{coords[0].shape[0]} boxes but {coords[1].shape[0]} sets of points")
        xy = lab = None
        if coords:
            xy = (torch.cat(coords, dim=1) / scale * size).to(self.device)
            lab = torch.cat(point_labels, dim=1).to(self.device)
        mask = None
        if mask_input is not None:
            mask = torch.as_tensor(np.asarray(mask_input, np.float32)).to(self.device)
            if mask.ndim == 3:
                mask = mask[None]
            if mask.ndim != 4 or mask.shape[1] != 1:
                raise ValueError(f"mask_input must be (1, h, w) or (B, 1, h, w) logits; got shape {tuple(mask.shape)}")
        return xy, lab, mask

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        points=None,
        labels=None,
        box=None,
        mask_input=None,
        multimask_output: bool = True,
        *,
        return_logits: bool = False,
        normalize_coords: bool = True,
        image_index: int = 0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for prompts on an image set before.

        Args:
            points: ``(N, 2)`` clicks ``(x, y)`` in image pixels (or ``(B, N, 2)``: ``B`` objects at once);
                ``labels (N,)`` / ``(B, N)``: 1 object, 0 background (default all 1).
            box: ``(4,)`` or ``(B, 4)`` boxes ``x1, y1, x2, y2``.
            mask_input: ``(1, h, w)`` or ``(B, 1, h, w)`` low-resolution logits, e.g. from a previous call.
            multimask_output: three candidate masks (for ambiguous prompts such as one click) or one.
            return_logits: return logits at the image's resolution instead of boolean masks.
            normalize_coords: coordinates are image pixels (``False``: fractions of the image, in [0, 1]).
            image_index: which image of :meth:`set_image_batch`.
        Returns:
            ``masks (M, H, W)``, ``ious (M,)`` and ``low_res_logits (M, h, w)`` (clamped to ±32), with a
            leading ``B`` when several prompts were given; ``M`` is 3 or 1.
        """
        image_index = self._check_index(image_index)
        coords, lab, mask = self._prompt_tensors(points, labels, box, mask_input, normalize_coords, image_index)
        low_res, ious = self.predict_logits(coords, lab, mask, multimask_output, image_index)
        masks = self.upscale(low_res, image_index)
        if not return_logits:
            masks = masks > self.mask_threshold
        low_res = low_res.clamp(-LOW_RES_LOGIT_LIMIT, LOW_RES_LOGIT_LIMIT)
        # One prompt set gives unbatched arrays, as SAM 2's predictor returns them.
        squeeze = (lambda x: x[0]) if masks.shape[0] == 1 else (lambda x: x)
        return (squeeze(masks.cpu().numpy()), squeeze(ious.float().cpu().numpy()),
                squeeze(low_res.float().cpu().numpy()))

    @torch.inference_mode()
    def predict_logits(
        self,
        coords: torch.Tensor | None,
        labels: torch.Tensor | None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        image_index: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder on prompts already in model coordinates: ``coords (B, N, 2)`` model-input pixels,
        ``labels (B, N)``, ``mask_input (B, 1, h, w)`` -> ``low_res (B, M, 4h', 4w')`` logits (not clamped)
        and ``ious (B, M)``."""
        emb = self._require()
        i = self._check_index(image_index)
        batch = next((t.shape[0] for t in (coords, mask_input) if t is not None), 1)
        features = emb.features[i : i + 1]
        if batch > 1:
            # A contiguous copy per prompt, as the official decoder repeats the image: the linear layers then
            # read the same memory layout and sum in the same order (an expanded view stays channels-last,
            # which on some CPUs changes the last bits of the logits).
            features = features.repeat(batch, 1, 1, 1)
        high_res = [x[i : i + 1] for x in emb.high_res]  # broadcast over the prompts by the decoder
        out = self.model.decode(features, high_res, coords, labels, mask_input, multimask_output)
        return out.masks, out.iou

    @torch.inference_mode()
    def upscale(self, low_res: torch.Tensor, image_index: int = 0) -> torch.Tensor:
        """``(B, M, h, w)`` low-resolution logits -> ``(B, M, H, W)`` logits at the image's resolution
        (bilinear), after hole and speck removal when enabled."""
        size = self._require().sizes[self._check_index(image_index)]
        logits = remove_small_regions(low_res, self.max_hole_area, self.max_sprinkle_area, self.mask_threshold)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
