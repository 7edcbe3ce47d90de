"""The official SAM 2 video predictor's method names and return shapes, on top of :class:`VideoPredictor`.

Existing SAM 2 scripts run on vos by changing one import::

    from vos.sam2_compat import build_sam2_video_predictor   # was: from sam2.build_sam import ...

The inference state returned by :meth:`SAM2VideoPredictor.init_state` is a :class:`VideoPredictor`.
Differences from the official predictor: frames are decoded on demand instead of preloaded, memories
that no selection can use again are dropped, and a correction on a tracked frame is kept by later
propagations instead of being recomputed away.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .checkpoint import build_model, read_checkpoint
from .config import get_config
from .inference_core import TrackerSettings
from .model import SAM2Model
from .video_predictor import VideoPredictor


class SAM2VideoPredictor:
    """Official-style wrapper: ``init_state``, ``add_new_points_or_box``, ``add_new_mask``,
    ``propagate_in_video``, ``reset_state``, ``remove_object``."""

    def __init__(self, model: SAM2Model, settings: TrackerSettings | None = None) -> None:
        self.model = model
        self.settings = settings or TrackerSettings.official()
        self.image_size = model.image_size
        self.device = model.device

    def init_state(self, video_path, offload_video_to_cpu=False, offload_state_to_cpu=False, async_loading_frames=False):
        """Open a video (folder of frames or file); returns the state object the other calls take."""
        settings = self.settings
        if offload_state_to_cpu:
            settings = replace(settings, memory=replace(settings.memory, storage_device="cpu"))
        return VideoPredictor(self.model, video_path, settings)

    @staticmethod
    def _ids_and_masks(result):
        return result.frame_idx, list(result.obj_ids), result.logits

    def add_new_points_or_box(
        self, inference_state: VideoPredictor, frame_idx, obj_id, points=None, labels=None,
        clear_old_points=True, normalize_coords=True, box=None,
    ):
        """Returns ``(frame_idx, obj_ids, video_res_masks (N, 1, H, W))``."""
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


def build_sam2_video_predictor(
    config_file: str, ckpt_path: str | os.PathLike | None = None, device="cuda", mode="eval",
    hydra_overrides_extra=(), apply_postprocessing=True, vos_optimized=False, **kwargs,
) -> SAM2VideoPredictor:
    """Build from an official config name or path (``configs/sam2.1/sam2.1_hiera_t.yaml``) and checkpoint.

    ``++model.non_overlap_masks=true`` among the overrides turns on non-overlapping outputs; other
    overrides are not interpreted. Falls back to the CPU when CUDA is not available.
    """
    name = Path(str(config_file)).name.removesuffix(".yaml")
    config = get_config(name)
    if apply_postprocessing:
        config = config.replace(dynamic_multimask_via_stability=True)
    if ckpt_path is None:
        model = SAM2Model(config)
    else:
        state_dict, _ = read_checkpoint(Path(ckpt_path))
        model = build_model(config, state_dict)
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        device = "cpu"
    model = model.to(device).eval()
    non_overlap = any(o.replace(" ", "") in ("++model.non_overlap_masks=true", "model.non_overlap_masks=true")
                      for o in hydra_overrides_extra)
    if apply_postprocessing:
        settings = TrackerSettings.official(non_overlap=non_overlap)
    else:
        settings = TrackerSettings(non_overlap=non_overlap)
    return SAM2VideoPredictor(model, settings)
