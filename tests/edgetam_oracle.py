"""The official EdgeTAM code (PyPI ``edgetam-dimos`` 1.0.1), used only as a numerical oracle.

The package installs its code as a top-level ``sam2`` package, a fork of SAM 2 from before the 2.1
release. It would shadow the official ``sam2`` 1.1.0 oracle, so it lives in its own folder
(``pip install --no-deps --target .oracles/edgetam edgetam-dimos==1.0.1``, or ``$VOS_EDGETAM_ORACLE``)
and is imported through :func:`forked_sam2.sam2_from`.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from forked_sam2 import ORACLES, promote_memories, sam2_from

ORACLE_DIR = Path(os.environ.get("VOS_EDGETAM_ORACLE", ORACLES / "edgetam"))

if not (ORACLE_DIR / "sam2" / "modeling" / "perceiver.py").is_file():
    pytest.skip(f"the EdgeTAM oracle (edgetam-dimos, test extra) is not installed in {ORACLE_DIR}",
                allow_module_level=True)


def build_edgetam(image_size: int, video: bool = False):
    """The official EdgeTAM model (or video predictor) on CPU in eval mode, at ``image_size``, without the
    builder's post-processing. Its RepViT trunk is built from timm without pretrained weights (the
    official config downloads them; every weight is replaced by the test anyway)."""
    feat = image_size // 16
    overrides = [
        f"++model.image_size={image_size}",
        # The official cross-attention takes its query grid from the config, not from the input.
        f"++model.memory_attention.layer.cross_attention.q_sizes=[{feat},{feat}]",
    ]
    with sam2_from(ORACLE_DIR):
        import sam2.modeling.backbones.timm as timm_backbone
        from sam2.build_sam import build_sam2, build_sam2_video_predictor

        create = timm_backbone.create_model
        timm_backbone.create_model = lambda *a, **kw: create(*a, **{**kw, "pretrained": False})
        try:
            builder = build_sam2_video_predictor if video else build_sam2
            with contextlib.redirect_stdout(None):  # the fork prints progress lines
                model = builder("edgetam.yaml", None, device="cpu", mode="eval", hydra_overrides_extra=overrides,
                                apply_postprocessing=False)
        finally:
            timm_backbone.create_model = create
    promote_memories(model)
    return model
