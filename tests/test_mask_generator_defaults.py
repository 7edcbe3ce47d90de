"""The generator's filters belong with the model: defaults from the model config (SAM 2's for official
checkpoints, measured ones for the embedded model), explicit values winning, and counts of what each filter
removed, which a run that keeps nothing prints."""
from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from PIL import Image
from tiny import tiny_config, tiny_tracking_model
from videos import moving_shapes, write_jpegs

from vos.cli import main
from vos.image.mask_generator import FilterCounts, MaskGenerator, generator_setting
from vos.jobs.everything import track_everything
from vos.model.config import (
    EFFICIENT_CONFIGS,
    OFFICIAL_CONFIGS,
    GeneratorDefaults,
    ModelConfig,
    get_config,
)
from vos.model.sam2 import SAM2Model
from vos.tracking.everything import EverythingSettings, EverythingTracker
from vos.weights.checkpoint import save_model

SAM2_FILTERS = GeneratorDefaults(pred_iou_thresh=0.8, stability_score_thresh=0.95, stability_score_offset=1.0)


def _with_generator(model: SAM2Model, defaults: GeneratorDefaults) -> SAM2Model:
    """The same weights under a config with other generator defaults."""
    other = SAM2Model(model.config.replace(generator=defaults)).eval()
    other.load_state_dict(model.state_dict())
    return other


def test_official_configs_keep_sam2_filters_and_the_embedded_model_has_its_own():
    for config in (*OFFICIAL_CONFIGS.values(), *EFFICIENT_CONFIGS.values()):
        assert config.generator == SAM2_FILTERS, config.name
    own = get_config("vos_small").generator
    assert own.pred_iou_thresh < 0.8 and own.stability_score_thresh < 0.95


def test_defaults_come_from_the_model_config_and_an_explicit_value_wins():
    model = tiny_tracking_model()
    generator = MaskGenerator(model)
    assert (generator.pred_iou_thresh, generator.stability_score_thresh, generator.stability_score_offset) == (0.8, 0.95, 1.0)
    calibrated = _with_generator(model, GeneratorDefaults(pred_iou_thresh=0.25, stability_score_thresh=0.4,
                                                          stability_score_offset=2.0))
    generator = MaskGenerator(calibrated)
    assert (generator.pred_iou_thresh, generator.stability_score_thresh, generator.stability_score_offset) == (0.25, 0.4, 2.0)
    generator = MaskGenerator(calibrated, pred_iou_thresh=0.0, stability_score_thresh=0.9, stability_score_offset=1.0)
    assert (generator.pred_iou_thresh, generator.stability_score_thresh, generator.stability_score_offset) == (0.0, 0.9, 1.0)
    assert generator_setting(calibrated, "pred_iou_thresh") == 0.25
    assert generator_setting(calibrated, "pred_iou_thresh", 0.0) == 0.0
    # The everything tracker: None is the model's, a value given wins.
    tracker = EverythingTracker(calibrated)
    assert (tracker.generator.pred_iou_thresh, tracker.generator.stability_score_thresh) == (0.25, 0.4)
    tracker = EverythingTracker(calibrated, EverythingSettings(pred_iou_thresh=0.6))
    assert (tracker.generator.pred_iou_thresh, tracker.generator.stability_score_thresh) == (0.6, 0.4)


def test_generator_defaults_are_checked_and_stored_configs_without_them_read_their_known_configs():
    with pytest.raises(ValueError, match="pred_iou_thresh is a fraction"):
        GeneratorDefaults(pred_iou_thresh=1.5)
    with pytest.raises(ValueError, match="stability_score_offset must be positive"):
        GeneratorDefaults(stability_score_offset=0.0)
    with pytest.raises(ValueError, match="generator.stability_score_thresh"):
        ModelConfig.from_dict(tiny_config().to_dict() | {"generator": {"stability_score_thresh": "high"}})
    # A config stored before the field existed (the shipped weights' is one): the known config of its name.
    vos_small = get_config("vos_small")
    stored = {k: v for k, v in vos_small.to_dict().items() if k != "generator"}
    assert ModelConfig.from_dict(stored) == vos_small
    custom = {k: v for k, v in tiny_config().to_dict().items() if k != "generator"}
    assert ModelConfig.from_dict(custom).generator == GeneratorDefaults()
    # A stored value wins over the known config's.
    mine = dataclasses.replace(vos_small, generator=GeneratorDefaults(pred_iou_thresh=0.5))
    assert ModelConfig.from_dict(mine.to_dict()) == mine


def test_the_counts_add_up_to_the_candidates_and_the_kept_masks():
    model = tiny_tracking_model()
    image = moving_shapes(1)[0]
    for options in ({"pred_iou_thresh": 0.5, "stability_score_thresh": 0.2},
                    {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "crop_n_layers": 1}):
        result = MaskGenerator(model, points_per_side=4, **options).run(image)
        c = result.counts
        grids = 1 + 4 * ("crop_n_layers" in options)
        assert c.candidates == 16 * 3 * grids  # three outputs a click, on the image and its 4 crops
        assert c.below_pred_iou + c.below_stability + c.at_crop_edge + c.duplicates + c.kept == c.candidates
        assert c.kept == len(result.masks) and c.kept > 0
        assert (c.pred_iou_thresh, c.stability_score_thresh) == (options["pred_iou_thresh"], options["stability_score_thresh"])
    first = MaskGenerator(model, points_per_side=4, pred_iou_thresh=0.5, stability_score_thresh=0.2).run(image).counts
    assert first.below_pred_iou and first.below_stability and first.duplicates  # each filter had work
    assert result.counts.at_crop_edge
    total = first + first
    assert total.candidates == 2 * first.candidates and total.pred_iou_thresh == 0.5
    # generate() is run()'s masks.
    generator = MaskGenerator(model, points_per_side=4, pred_iou_thresh=0.5, stability_score_thresh=0.2)
    assert [r["area"] for r in generator.generate(image)] == [r["area"] for r in generator.run(image).masks]


def test_a_run_that_keeps_nothing_names_the_filters_that_removed_the_candidates():
    counts = FilterCounts(0.8, 0.95, candidates=3072, below_pred_iou=2950, below_stability=122, best_pred_iou=0.84,
                          best_stability=0.913)
    assert counts.line() == ("0 masks kept of 3072 candidates: 2950 below predicted IoU 0.8 (best 0.84), 122 below "
                             "stability 0.95 (best 0.91); lower pred_iou_thresh / stability_score_thresh")
    counts = FilterCounts(0.3, 0.1, candidates=48, below_stability=48, best_stability=0.05)
    assert counts.line(lambda name: f"--{name}") == ("0 masks kept of 48 candidates: 48 below stability 0.1 (best "
                                                     "0.05); lower --stability_score_thresh")
    # With masks kept there is nothing to advise.
    counts = FilterCounts(0.3, 0.1, candidates=48, below_pred_iou=40, duplicates=5, kept=3, best_pred_iou=0.5)
    assert counts.line() == "3 masks kept of 48 candidates: 40 below predicted IoU 0.3 (best 0.50), 5 duplicates"
    model = tiny_tracking_model()
    image = moving_shapes(1)[0]
    result = MaskGenerator(model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=1.0).run(image)
    assert result.masks == [] and result.counts.line().endswith("; lower stability_score_thresh")
    assert 0.0 < result.counts.best_stability < 1.0 and f"48 below stability 1 (best {result.counts.best_stability:.2f})" in result.counts.line()
    # The best score tells where a threshold would let candidates through.
    best = result.counts.best_pred_iou
    assert MaskGenerator(model, points_per_side=4, pred_iou_thresh=best, stability_score_thresh=0).run(image).masks == []
    assert MaskGenerator(model, points_per_side=4, pred_iou_thresh=best - 1e-3, stability_score_thresh=0).run(image).masks


def test_segment_command_says_why_an_image_has_no_masks(tmp_path, capsys):
    checkpoint = save_model(tiny_tracking_model(), tmp_path / "tiny.pt")
    image = tmp_path / "shapes.png"
    Image.fromarray(moving_shapes(1)[0]).save(image)
    assert main(["segment", str(image), "--checkpoint", str(checkpoint), "--points-per-side", "4",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"shapes.png: 0 masks kept of 48 candidates: 48 below predicted IoU 0.8 \(best 0\.\d\d\); "
                     r"lower --pred-iou-thresh\n", out), out
    assert json.loads((tmp_path / "out" / "shapes" / "masks.json").read_text()) == []
    assert main(["segment", str(image), "--checkpoint", str(checkpoint), "--points-per-side", "4",
                 "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--out", str(tmp_path / "out")]) == 0
    assert "shapes.png: 1 masks ->" in capsys.readouterr().out
    assert main(["info", str(checkpoint)]) == 0  # vos info says where a checkpoint's filters sit
    assert "generator:   keeps masks with predicted IoU > 0.8 and stability >= 0.95 (offset 1)" in capsys.readouterr().out


def test_track_everything_says_why_it_found_nothing(tmp_path):
    frames = write_jpegs(moving_shapes(3, size=(48, 64)), tmp_path / "frames")
    lines = []
    settings = EverythingSettings(every=2, points_per_side=3)
    frame_count, found = track_everything(tiny_tracking_model(), frames, tmp_path / "out", settings=settings,
                                          overlay=False, progress=False, log=lines.append)
    assert (frame_count, found) == (3, 0)
    assert len(lines) == 1 and lines[0].startswith("frames: 0 objects found in 2 searches: 0 masks kept of 54 "
                                                    "candidates: 54 below predicted IoU 0.8 (best 0.")
    assert lines[0].endswith("); lower --pred-iou-thresh")


def test_live_everything_says_why_it_found_nothing():
    from streams import FrameArray
    from vos.jobs.live import run_live

    lines = []
    report = run_live(tiny_tracking_model(), FrameArray(moving_shapes(3, (48, 64)), fps=10), [], show=False,
                      log=lines.append, everything=EverythingSettings(every=0, points_per_side=3), report_every=1e9)
    assert report.frames == 3
    assert lines[-1].startswith("0 objects found in 1 search: 0 masks kept of 27 candidates: 27 below predicted IoU 0.8")


@pytest.mark.slow
def test_segment_with_the_embedded_model_at_its_defaults_finds_masks_on_a_real_image(shared_dir, tmp_path, capsys):
    images = shared_dir / "data" / "interactive-images" / "coco-mval" / "images"
    if not images.is_dir():
        pytest.skip(f"{images} is absent")
    image = min(images.glob("*.jpg"))
    assert main(["segment", str(image), "--out", str(tmp_path)]) == 0
    records = json.loads((tmp_path / image.stem / "masks.json").read_text())
    assert records, capsys.readouterr().out
    assert len(list((tmp_path / image.stem / "masks").glob("*.png"))) == len(records)
    assert all(np.isfinite(r["predicted_iou"]) for r in records)
