"""The official SAM 2 entry points on vos: existing SAM 2 scripts run by changing one import
(``from vos.sam2_compat import build_sam2_video_predictor``). ``builders`` holds the predictors, ``frames``
reads frames as the official loader does, ``overrides`` reads the official builders' arguments."""
from .builders import (
    SAM2AutomaticMaskGenerator,
    SAM2ImagePredictor,
    SAM2VideoPredictor,
    build_sam2,
    build_sam2_video_predictor,
)

__all__ = ["SAM2AutomaticMaskGenerator", "SAM2ImagePredictor", "SAM2VideoPredictor", "build_sam2",
           "build_sam2_video_predictor"]
