"""The official builders' arguments as vos reads them: config names, hydra overrides, and a warning for
every argument that is accepted but changes nothing, so that a script moved to vos never silently loses a
setting."""
from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..model.config import ModelConfig, get_config
from ..tracking.core import TrackerSettings


class IgnoredArgumentWarning(UserWarning):
    """An argument of an official API that vos accepts and does not act on."""


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """Warn with ``message`` the first time it comes up in this process (scripts build predictors in loops)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, IgnoredArgumentWarning, stacklevel=3)


def config_for(config_file: str | Path) -> ModelConfig:
    """The config an official config name or path names: ``configs/sam2.1/sam2.1_hiera_t.yaml``,
    ``sam2_hiera_s.yaml`` or ``sam2.1_hiera_b+`` (the file's name is what counts, as in the official
    package, whose configs are found by name)."""
    return get_config(Path(str(config_file)).name.removesuffix(".yaml"))


def _value(text: str) -> Any:
    """A hydra override's value: booleans, null, integers and floats as YAML reads them, else the text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_overrides(overrides) -> dict[str, Any]:
    """``["++model.image_size=512", "model.fill_hole_area=0"]`` -> ``{"image_size": 512, "fill_hole_area": 0}``:
    the ``model.`` keys of hydra overrides (``key=value``, ``+key=value`` or ``++key=value``); anything else
    is named in a warning."""
    out: dict[str, Any] = {}
    for override in overrides:
        key, sep, value = str(override).replace(" ", "").lstrip("+").partition("=")
        if not sep or not key.startswith("model."):
            warn_once(f"hydra override {override!r} is not interpreted by vos (only model.<key>=<value> are)")
            continue
        out[key.removeprefix("model.")] = _value(value)
    return out


# Official model keys -> what sets them in vos, for the keys vos interprets.
_STABILITY = {"sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
              "sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98}
_TRACKER_KEYS = {
    "non_overlap_masks": "non_overlap",
    "fill_hole_area": "fill_hole_area",
    "binarize_mask_from_pts_for_mem_enc": "binarize_prompt_masks",
    "add_all_frames_to_correct_as_cond": "corrections_as_prompts",
}
_MEMORY_KEYS = {
    "memory_temporal_stride_for_eval": "temporal_stride",
    "max_cond_frames_in_attn": "max_prompts_in_attention",
    "max_obj_ptrs_in_encoder": "max_pointers",
    "only_obj_ptrs_in_the_past_for_eval": "only_past_pointers",
}


@dataclass
class BuildArguments:
    """What the official builders' arguments ask of vos: the model's config and, for the video predictor,
    the tracker's settings."""

    config: ModelConfig
    settings: TrackerSettings


def read_build_arguments(config_file, overrides, apply_postprocessing: bool, video: bool) -> BuildArguments:
    """Interpret a builder's config name, ``hydra_overrides_extra`` and ``apply_postprocessing``: the
    official defaults (:meth:`TrackerSettings.official` with post-processing, as the official video
    builder) changed by the overrides vos knows; the others are warned about, once each."""
    config = config_for(config_file)
    keys = parse_overrides(overrides)
    if apply_postprocessing:
        config = config.replace(dynamic_multimask_via_stability=True)
        settings = TrackerSettings.official()
    else:
        settings = TrackerSettings(keep_corrections=False)
    # The official predictor keeps every prompted frame; vos caps them by default.
    memory = replace(settings.memory, max_prompted_frames=None)
    ignored = []
    for key, value in keys.items():
        if key == "image_size":
            config = config.replace(image_size=int(value))
        elif key == "sam_mask_decoder_extra_args.dynamic_multimask_via_stability":
            config = config.replace(dynamic_multimask_via_stability=bool(value))
        elif key in _STABILITY and value == _STABILITY[key]:
            pass  # vos's fixed values
        elif video and key in _TRACKER_KEYS:
            settings = replace(settings, **{_TRACKER_KEYS[key]: value})
        elif video and key in _MEMORY_KEYS:
            memory = replace(memory, **{_MEMORY_KEYS[key]: value})
        else:
            ignored.append(f"model.{key}={value}")
    if ignored:
        warn_once(f"hydra overrides not interpreted by vos (they change nothing): {', '.join(ignored)}")
    return BuildArguments(config, replace(settings, memory=memory))


def warn_ignored(where: str, **arguments) -> None:
    """One warning naming the arguments given to ``where`` that vos ignores (``name=value`` pairs whose
    value is not the official default; pass only those)."""
    if arguments:
        listed = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        warn_once(f"{where}: vos ignores {listed}")
