"""vos: real-time video object segmentation and tracking, compatible with SAM 2 / SAM 2.1 checkpoints.

The public API, re-exported from the subpackages where it lives. Names are imported on first use, so that
``import vos`` (and every ``vos`` command) costs only what it touches: ``vos --help`` imports no torch.

* ``vos.model``: the network (``SAM2Model``, its configs and modules);
* ``vos.weights``: loading and saving weights, official downloads, the embedded model;
* ``vos.tracking``: the per-frame core and the trackers (``VideoPredictor``, ``LiveTracker``, ...);
* ``vos.image``: single images (``ImagePredictor``, ``MaskGenerator``);
* ``vos.jobs``: what the commands run (track, live, segment, demo, eval) and their sinks;
* ``vos.export``, ``vos.sam2_compat``, ``vos.app``, ``vos.train``.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "vos.weights.checkpoint": ["CheckpointError", "build_model", "check_fits", "infer_config", "read_checkpoint",
                               "save_model"],
    "vos.weights.hub": ["DownloadError", "canonical_name", "checkpoint_path"],
    "vos.weights.load": ["DEFAULT_WEIGHTS", "load_model"],
    "vos.model.config": ["OFFICIAL_CONFIGS", "HieraConfig", "ModelConfig", "get_config"],
    "vos.model.device": ["check_device"],
    "vos.model.interface": ["HeadOutput", "TrackingModel"],
    "vos.model.sam2": ["NO_OBJ_SCORE", "SAM2Model"],
    "vos.tracking.core": ["TrackerSettings"],
    "vos.tracking.everything": ["EverythingSettings", "EverythingTracker"],
    "vos.tracking.live_tracker": ["FrameSizeError", "LiveTracker", "MultiStreamTracker"],
    "vos.tracking.prompts": ["Prompt", "PromptError"],
    "vos.tracking.results": ["FrameResult"],
    "vos.tracking.video_predictor": ["VideoPredictor"],
    "vos.image.predictor": ["ImagePredictor"],
    "vos.image.mask_generator": ["MaskGenerator"],
    "vos.jobs.evaluate": ["EvalRun", "evaluate"],
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vos' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

