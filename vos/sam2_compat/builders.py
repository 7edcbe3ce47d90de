"""The official SAM 2 video predictor's method names and return shapes, on top of :class:`VideoPredictor`.

Existing SAM 2 scripts run on vos by changing one import::

    from vos.sam2_compat import build_sam2_video_predictor   # was: from sam2.build_sam import ...

The inference state returned by :meth:`SAM2VideoPredictor.init_state` is a :class:`VideoPredictor` with
the official predictor's settings, reading a folder of JPEGs or an MP4 file as the official loader does
(:mod:`vos.sam2_compat.frames`), so that the same calls on the same files give the official outputs (logits within
1e-3, the same masks; ``tests/test_sam2_adapter_parity.py``). Frames are decoded on demand instead of
preloaded. Arguments and hydra overrides vos does not act on are named in an
:class:`~vos.sam2_compat.overrides.IgnoredArgumentWarning`, once.

Images too: ``build_sam2``, :class:`SAM2ImagePredictor` (``set_image``, ``set_image_batch``, ``predict``,
``predict_batch``, ``reset_predictor``) and :class:`SAM2AutomaticMaskGenerator` (``generate``), on top of
:class:`vos.ImagePredictor` and :class:`vos.MaskGenerator`, with the official return shapes and records.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..image.mask_generator import MaskGenerator
from ..image.predictor import ImagePredictor
from ..model.kernels import use_packed_kernels
from ..model.sam2 import SAM2Model
from ..tracking.core import TrackerSettings
from ..tracking.video_predictor import VideoPredictor
from ..weights.checkpoint import build_model, read_checkpoint
from .frames import Sam2Frames, is_sam2_video
from .overrides import BuildArguments, read_build_arguments, warn_ignored, warn_once


class SAM2VideoPredictor:
    """Official-style wrapper: ``init_state``, ``add_new_points_or_box``, ``add_new_mask``,
    ``propagate_in_video``, ``reset_state``, ``remove_object``."""

    def __init__(self, model: SAM2Model, settings: TrackerSettings | None = None) -> None:
        self.model = model
        self.settings = settings or TrackerSettings.official()
        self.image_size = model.image_size
        self.device = model.device

    def init_state(self, video_path, offload_video_to_cpu=False, offload_state_to_cpu=False, async_loading_frames=False):
        """Open a video; returns the state object the other calls take. A folder of JPEGs or an MP4 file is
        read as the official loader reads it (:class:`vos.sam2_compat.frames.Sam2Frames`); other videos, which the
        official predictor refuses, by vos's own readers. Frames are decoded on demand (an MP4 once, at the
        input size), so ``offload_video_to_cpu`` and ``async_loading_frames`` change nothing."""
        settings = self.settings
        if offload_state_to_cpu:
            settings = replace(settings, memory=replace(settings.memory, storage_device="cpu"))
        video = Sam2Frames(video_path, self.image_size) if is_sam2_video(video_path) else video_path
        return VideoPredictor(self.model, video, settings)

    @staticmethod
    def _ids_and_masks(result):
        return result.frame_idx, list(result.obj_ids), result.logits

    def add_new_points_or_box(
        self, inference_state: VideoPredictor, frame_idx, obj_id, points=None, labels=None,
        clear_old_points=True, normalize_coords=True, box=None,
    ):
        """Returns ``(frame_idx, obj_ids, video_res_masks (N, 1, H, W))``. A box with ``clear_old_points=False``
        is refused, as the official call refuses it (vos's own :meth:`VideoPredictor.add_points` takes it)."""
        if box is not None and not clear_old_points:
            raise ValueError("cannot add box without clearing old points, since box prompt must be provided before "
                             "any point prompt (please use clear_old_points=True instead)")
        h, w = inference_state.video_size
        scale = np.array([w, h], np.float32)
        if isinstance(points, torch.Tensor):
            points = points.cpu().numpy()
        if isinstance(labels, torch.Tensor):
            labels = labels.cpu().numpy()
        if isinstance(box, torch.Tensor):
            box = box.cpu().numpy()
        if not normalize_coords:  # coordinates are fractions of the frame
            points = None if points is None else np.asarray(points, np.float32).reshape(-1, 2) * scale
            box = None if box is None else (np.asarray(box, np.float32).reshape(2, 2) * scale).reshape(-1)
        if points is not None and len(np.asarray(points).reshape(-1)) == 0:
            points, labels = None, None
        result = inference_state.add_points(frame_idx, obj_id, points, labels, box, clear=clear_old_points)
        return self._ids_and_masks(result)

    def add_new_points(self, *args, **kwargs):
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(self, inference_state: VideoPredictor, frame_idx, obj_id, mask):
        if isinstance(mask, torch.Tensor):
            mask = mask.cpu().numpy()
        return self._ids_and_masks(inference_state.add_mask(frame_idx, obj_id, mask))

    def propagate_in_video(self, inference_state: VideoPredictor, start_frame_idx=None, max_frame_num_to_track=None, reverse=False):
        for result in inference_state.propagate(start_frame_idx, max_frame_num_to_track, reverse):
            yield self._ids_and_masks(result)

    def reset_state(self, inference_state: VideoPredictor) -> None:
        inference_state.reset()

    def remove_object(self, inference_state: VideoPredictor, obj_id, strict=False, need_output=True):
        """Returns ``(obj_ids, updated_frames)``: the remaining ids and, on the frames the object had
        prompts on, ``(frame_idx, video_res_masks)`` of the remaining objects."""
        if obj_id not in inference_state.obj_ids:
            if strict:
                raise RuntimeError(f"Cannot remove object id {obj_id} as it doesn't exist. "
                                   f"All existing object ids: {inference_state.obj_ids}.")
            return inference_state.obj_ids, []
        frames = inference_state.remove_object(obj_id)
        updated = []
        if need_output and inference_state.obj_ids:
            updated = [(t, inference_state.result(t).logits) for t in frames]
        return inference_state.obj_ids, updated


def build_sam2(
    config_file: str, ckpt_path: str | os.PathLike | None = None, device="cuda", mode="eval",
    hydra_overrides_extra=(), apply_postprocessing=True, **kwargs,
) -> SAM2Model:
    """A model from an official config name or path and checkpoint, as the official ``build_sam2``:
    ``apply_postprocessing`` turns on the fallback to multimask outputs when one mask is unstable.
    ``++model.image_size=N`` among the overrides runs the model at another input size; other overrides,
    and other keyword arguments, are warned about and change nothing. Falls back to the CPU, with a
    warning, when CUDA is asked for and not available. The model runs on PyTorch's own kernels
    (:func:`vos.model.kernels.use_packed_kernels`), as the official one does."""
    args = read_build_arguments(config_file, hydra_overrides_extra, apply_postprocessing, video=False)
    warn_ignored("build_sam2", **kwargs)
    return _model(args, ckpt_path, device, mode == "eval")


def _model(args: BuildArguments, ckpt_path, device, eval_mode: bool) -> SAM2Model:
    if ckpt_path is None:
        model = SAM2Model(args.config)
    else:
        state_dict, _ = read_checkpoint(Path(ckpt_path))
        model = build_model(args.config, state_dict)
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        warn_once(f"device={str(device)!r} was asked for but CUDA is not available: vos runs on the CPU")
        device = "cpu"
    # Changing one import must give the official numbers: PyTorch's own kernels, not the faster oneDNN
    # ones, whose rounding can move a mask at a threshold's edge (vos's native API keeps them).
    model = use_packed_kernels(model.to(device), False)
    return model.eval() if eval_mode else model


def build_sam2_video_predictor(
    config_file: str, ckpt_path: str | os.PathLike | None = None, device="cuda", mode="eval",
    hydra_overrides_extra=(), apply_postprocessing=True, vos_optimized=False, **kwargs,
) -> SAM2VideoPredictor:
    """Build from an official config name or path (``configs/sam2.1/sam2.1_hiera_t.yaml``) and checkpoint.

    The tracker gets the official predictor's settings (with ``apply_postprocessing``, its post-processing).
    Overrides of ``model.image_size``, ``model.non_overlap_masks``, ``model.fill_hole_area``,
    ``model.binarize_mask_from_pts_for_mem_enc``, ``model.add_all_frames_to_correct_as_cond``,
    ``model.memory_temporal_stride_for_eval``, ``model.max_cond_frames_in_attn``,
    ``model.max_obj_ptrs_in_encoder`` and ``model.only_obj_ptrs_in_the_past_for_eval`` act as in the
    official predictor; other overrides, ``mode`` other than ``"eval"``, ``vos_optimized`` and other
    keyword arguments are warned about and change nothing. Falls back to the CPU, with a warning, when
    CUDA is asked for and not available.
    """
    args = read_build_arguments(config_file, hydra_overrides_extra, apply_postprocessing, video=True)
    ignored = dict(kwargs)
    if mode != "eval":
        ignored["mode"] = mode  # a video predictor always runs in inference mode
    if vos_optimized:
        ignored["vos_optimized"] = vos_optimized  # the official compiled variant; same numbers
    warn_ignored("build_sam2_video_predictor", **ignored)
    return SAM2VideoPredictor(_model(args, ckpt_path, device, True), args.settings)


class SAM2ImagePredictor:
    """Official-style image predictor: ``set_image``, ``set_image_batch``, ``predict``, ``predict_batch``,
    ``reset_predictor``, ``get_image_embedding``."""

    def __init__(self, sam_model: SAM2Model, mask_threshold=0.0, max_hole_area=0.0, max_sprinkle_area=0.0,
                 **kwargs) -> None:
        warn_ignored("SAM2ImagePredictor", **kwargs)
        self.model = sam_model
        self.mask_threshold = mask_threshold
        self._predictor = ImagePredictor(sam_model, mask_threshold=mask_threshold, max_hole_area=int(max_hole_area),
                                         max_sprinkle_area=int(max_sprinkle_area))
        self._is_batch = False

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def _is_image_set(self) -> bool:
        return self._predictor.is_image_set

    def set_image(self, image) -> None:
        self._predictor.set_image(image)
        self._is_batch = False

    def set_image_batch(self, image_list) -> None:
        if not isinstance(image_list, list):
            raise TypeError("set_image_batch takes a list of (H, W, 3) numpy images")
        self._predictor.set_image_batch(image_list)
        self._is_batch = True

    def reset_predictor(self) -> None:
        self._predictor.reset()
        self._is_batch = False

    def get_image_embedding(self) -> torch.Tensor:
        """``(N, C, h, w)`` stride-16 features of the images set (with the no-memory embedding)."""
        return self._predictor.embedding

    def predict(self, point_coords=None, point_labels=None, box=None, mask_input=None, multimask_output=True,
                return_logits=False, normalize_coords=True):
        """Returns ``masks (C, H, W)``, ``ious (C,)``, ``low_res_masks (C, h, w)`` (a leading ``B`` for
        batched prompts)."""
        if not self._is_image_set:
            raise RuntimeError("An image must be set with .set_image(...) before mask prediction.")
        if point_coords is not None and point_labels is None:
            raise ValueError("point_labels must be supplied if point_coords is supplied.")
        return self._predict(point_coords, point_labels, box, mask_input, multimask_output, return_logits,
                             normalize_coords, -1)

    def _predict(self, points, labels, box, mask_input, multimask_output, return_logits, normalize_coords, index):
        masks, ious, low_res = self._predictor.predict(
            _numpy(points), _numpy(labels), _numpy(box), _numpy(mask_input), multimask_output,
            return_logits=return_logits, normalize_coords=normalize_coords, image_index=index,
        )
        return masks.astype(np.float32), ious, low_res  # the official masks are float arrays of 0 and 1

    def predict_batch(self, point_coords_batch=None, point_labels_batch=None, box_batch=None, mask_input_batch=None,
                      multimask_output=True, return_logits=False, normalize_coords=True):
        """One ``predict`` per image of ``set_image_batch``: lists of masks, ious and low-res logits."""
        if not self._is_batch:
            raise RuntimeError("predict_batch is for images set with .set_image_batch(...)")
        pick = lambda batch, i: None if batch is None else _numpy(batch[i])  # noqa: E731
        out = [], [], []
        for i in range(len(self._predictor.image_sizes)):
            result = self._predict(pick(point_coords_batch, i), pick(point_labels_batch, i), pick(box_batch, i),
                                   pick(mask_input_batch, i), multimask_output, return_logits, normalize_coords, i)
            for part, value in zip(out, result):
                part.append(value)
        return out


def _numpy(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x


class SAM2AutomaticMaskGenerator(MaskGenerator):
    """The official automatic mask generator's name and arguments; ``generate(image)`` returns its records."""

    def __init__(self, model: SAM2Model, points_per_side=32, points_per_batch=64, pred_iou_thresh=0.8,
                 stability_score_thresh=0.95, stability_score_offset=1.0, mask_threshold=0.0, box_nms_thresh=0.7,
                 crop_n_layers=0, crop_nms_thresh=0.7, crop_overlap_ratio=512 / 1500, crop_n_points_downscale_factor=1,
                 point_grids=None, min_mask_region_area=0, output_mode="binary_mask", use_m2m=False,
                 multimask_output=True, **kwargs) -> None:
        warn_ignored("SAM2AutomaticMaskGenerator", **kwargs)
        super().__init__(model, points_per_side, points_per_batch, pred_iou_thresh, stability_score_thresh,
                         stability_score_offset, mask_threshold, box_nms_thresh, crop_n_layers, crop_nms_thresh,
                         crop_overlap_ratio, crop_n_points_downscale_factor, point_grids, min_mask_region_area,
                         output_mode, use_m2m, multimask_output)
