"""The image predictor and the automatic mask generator against the official sam2 ones, through the compat
entry points, with the same random weights in an official checkpoint file, on real COCO images.

The official image predictor hard-codes the feature sizes of a 1024 px model; at the small test size its
``_bb_feat_sizes`` is set to the model's. Its hole and speck removal needs the CUDA extension ``sam2._C``
(on a CPU it warns and skips the step); the post-processing tests give it an independent CPU connected-
components labelling (scipy) in its place, so that the official code path runs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from oracle import OFFICIAL_YAML, max_diff, random_state_dict
from PIL import Image
from sam2.automatic_mask_generator import (
    SAM2AutomaticMaskGenerator as OfficialGenerator,  # noqa: E402
)
from sam2.build_sam import build_sam2 as official_build_sam2  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor as OfficialPredictor  # noqa: E402

from vos.image.mask_generator import (
    MaskGenerator,
    compress_rle,
    mask_to_rle,
    rle_to_mask,
)
from vos.model.kernels import use_packed_kernels
from vos.sam2_compat import SAM2AutomaticMaskGenerator, SAM2ImagePredictor, build_sam2

SIZE = 256
NAME = "sam2.1_hiera_tiny"
IMAGES = ["airplane00_000000281693.jpg", "cat00_000000197528.jpg"]


def generator_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Random weights under which some masks pass the generator's default filters: predicted IoUs raised
    (about half above 0.8) and mask logits scaled up (stable under a ±1 shift)."""
    state = dict(state)
    state["sam_mask_decoder.iou_prediction_head.layers.2.bias"] = state["sam_mask_decoder.iou_prediction_head.layers.2.bias"] + 2.0
    for i in range(4):
        key = f"sam_mask_decoder.output_hypernetworks_mlps.{i}.layers.2.weight"
        state[key] = state[key] * 5.0
    return state


@pytest.fixture(scope="module")
def images(shared_dir):
    folder = shared_dir / "data" / "interactive-images" / "coco-mval" / "images"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return [np.array(Image.open(folder / name).convert("RGB")) for name in IMAGES]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An official-format checkpoint of random weights, and both models built from it by their builders."""
    path = tmp_path_factory.mktemp("ckpt") / f"{NAME}.pt"
    overrides = [f"++model.image_size={SIZE}"]
    official = official_build_sam2(OFFICIAL_YAML[NAME], None, device="cpu", hydra_overrides_extra=overrides)
    torch.save({"model": generator_weights(random_state_dict(official.state_dict(), seed=1))}, path)
    official = official_build_sam2(OFFICIAL_YAML[NAME], str(path), device="cpu", hydra_overrides_extra=overrides)
    ours = build_sam2(OFFICIAL_YAML[NAME], path, device="cpu", hydra_overrides_extra=overrides)
    return official, ours


@pytest.fixture
def exact(checkpoint):
    """The models as the builders give them: the compat builder runs vos on PyTorch's own kernels, so that
    changing one import gives the official numbers."""
    official, ours = checkpoint
    assert not any(getattr(m, "packed", False) for m in ours.modules())
    return official, ours


@pytest.fixture
def packed(checkpoint):
    """vos on its default oneDNN kernels, as the native API runs."""
    official, ours = checkpoint
    use_packed_kernels(ours, True)
    yield official, ours
    use_packed_kernels(ours, False)


def _official_predictor(model, **kwargs) -> OfficialPredictor:
    predictor = OfficialPredictor(model, **kwargs)
    f = SIZE // 4
    predictor._bb_feat_sizes = [(f, f), (f // 2, f // 2), (f // 4, f // 4)]
    return predictor


def _official_generator(model, **kwargs) -> OfficialGenerator:
    generator = OfficialGenerator(model, **kwargs)
    generator.predictor = _official_predictor(model, max_hole_area=generator.min_mask_region_area,
                                              max_sprinkle_area=generator.min_mask_region_area)
    return generator


@pytest.fixture
def cpu_connected_components(monkeypatch):
    """The official ``get_connected_components`` (CUDA only) on the CPU, written independently with scipy."""
    from scipy import ndimage

    def components(mask: torch.Tensor):
        labels, counts = torch.zeros(mask.shape, dtype=torch.int32), torch.zeros(mask.shape, dtype=torch.int32)
        for i in range(mask.shape[0]):
            lab, _ = ndimage.label(mask[i, 0].numpy(), structure=np.ones((3, 3)))
            area = np.bincount(lab.ravel())
            area[0] = 0
            labels[i, 0] = torch.from_numpy(lab.astype(np.int32))
            counts[i, 0] = torch.from_numpy(area[lab].astype(np.int32))
        return labels, counts

    import sam2.utils.misc

    monkeypatch.setattr(sam2.utils.misc, "get_connected_components", components)


PROMPTS = {
    "click": dict(point_coords=np.array([[120.0, 140.0]]), point_labels=np.array([1])),
    "clicks_and_box": dict(point_coords=np.array([[120.0, 140.0], [30.0, 40.0]]), point_labels=np.array([1, 0]),
                           box=np.array([50.0, 40.0, 260.0, 230.0])),
    "box_single_mask": dict(box=np.array([50.0, 40.0, 260.0, 230.0]), multimask_output=False),
    "two_clicks_single_mask": dict(point_coords=np.array([[120.0, 140.0], [200.0, 100.0]]),
                                   point_labels=np.array([1, 1]), multimask_output=False),
    "batched_objects": dict(point_coords=np.array([[[120.0, 140.0]], [[300.0, 60.0]]]), point_labels=np.array([[1], [1]]),
                            box=np.array([[50.0, 40.0, 260.0, 230.0], [250.0, 10.0, 380.0, 120.0]])),
    "fractions": dict(point_coords=np.array([[0.3, 0.5]]), point_labels=np.array([1]), normalize_coords=False),
}


def _predict_both(official, ours, image, kwargs, **predictor_kwargs):
    theirs = _official_predictor(official, **predictor_kwargs)
    mine = SAM2ImagePredictor(ours, **predictor_kwargs)
    theirs.set_image(image)
    mine.set_image(image)
    return theirs.predict(**kwargs), mine.predict(**kwargs)


@pytest.mark.parametrize("prompt", list(PROMPTS))
@torch.no_grad()
def test_image_predictor_masks_identical_to_official(exact, images, prompt):
    official, ours = exact
    theirs, mine = _predict_both(official, ours, images[0], PROMPTS[prompt])
    for a, b in zip(theirs, mine):
        assert a.shape == b.shape and a.dtype == b.dtype
    assert np.array_equal(theirs[0], mine[0]) and theirs[0].any()
    assert np.array_equal(theirs[1], mine[1]) and np.array_equal(theirs[2], mine[2])


@pytest.mark.parametrize("prompt", ["click", "batched_objects"])
@torch.no_grad()
def test_image_predictor_logits_on_packed_kernels_within_tolerance(packed, images, prompt):
    official, ours = packed
    kwargs = dict(PROMPTS[prompt], return_logits=True)
    theirs, mine = _predict_both(official, ours, images[1], kwargs)
    for a, b in zip(theirs, mine):
        assert max_diff(torch.from_numpy(a), torch.from_numpy(b)) <= 1e-3


@torch.no_grad()
def test_mask_input_round_trip_matches_official(exact, images):
    """The low-resolution logits of one call as the mask prompt of the next, with and without clicks."""
    official, ours = exact
    _, _, low = _predict_both(official, ours, images[0], PROMPTS["click"])[0]
    for kwargs in (dict(mask_input=low[:1]), dict(PROMPTS["click"], mask_input=low[:1], multimask_output=False)):
        theirs, mine = _predict_both(official, ours, images[0], kwargs)
        for a, b in zip(theirs, mine):
            assert np.array_equal(a, b)


@torch.no_grad()
def test_image_batch_matches_official(exact, images):
    official, ours = exact
    theirs, mine = _official_predictor(official), SAM2ImagePredictor(ours)
    theirs.set_image_batch(images)
    mine.set_image_batch(images)
    kwargs = dict(point_coords_batch=[np.array([[100.0, 90.0]]), np.array([[200.0, 150.0], [20.0, 20.0]])],
                  point_labels_batch=[np.array([1]), np.array([1, 0])], box_batch=[None, np.array([10, 10, 250, 300])])
    for a, b in zip(theirs.predict_batch(**kwargs), mine.predict_batch(**kwargs)):
        assert len(a) == len(b) == 2
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    assert torch.equal(theirs.get_image_embedding(), mine.get_image_embedding())


@torch.no_grad()
def test_hole_and_speck_removal_matches_official(exact, images, cpu_connected_components):
    official, ours = exact
    kwargs = dict(PROMPTS["click"], return_logits=True)
    plain, _ = _predict_both(official, ours, images[0], kwargs)
    theirs, mine = _predict_both(official, ours, images[0], kwargs, max_hole_area=40, max_sprinkle_area=40)
    assert not np.array_equal(plain[0], theirs[0])  # the post-processing changed something
    for a, b in zip(theirs, mine):
        assert np.array_equal(a, b)


def _assert_same_records(theirs: list[dict], mine: list[dict]) -> None:
    assert len(theirs) == len(mine)
    for a, b in zip(theirs, mine):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
            else:
                assert a[key] == b[key], key


@torch.no_grad()
def test_generator_at_default_settings_matches_official(exact, images):
    official, ours = exact
    theirs = _official_generator(official).generate(images[0])
    mine = SAM2AutomaticMaskGenerator(ours).generate(images[0])
    assert theirs, "the weights should let some masks through the default filters"
    _assert_same_records(theirs, mine)


@pytest.mark.slow
@torch.no_grad()
def test_generator_with_crops_and_postprocessing_matches_official(exact, images, cpu_connected_components):
    """One layer of crops, hole and speck removal; no box de-duplication (every box of these random masks
    spans the image), so that many records and their order are compared."""
    official, ours = exact
    kwargs = dict(points_per_side=12, crop_n_layers=1, min_mask_region_area=30, box_nms_thresh=1.0,
                  crop_nms_thresh=1.0, pred_iou_thresh=0.75, stability_score_thresh=0.9)
    theirs = _official_generator(official, **kwargs).generate(images[1])
    mine = SAM2AutomaticMaskGenerator(ours, **kwargs).generate(images[1])
    assert len(theirs) >= 20
    _assert_same_records(theirs, mine)


@pytest.mark.parametrize("output_mode", ["uncompressed_rle", "coco_rle"])
@torch.no_grad()
def test_generator_refinement_and_rle_outputs_match_official(exact, images, output_mode):
    if output_mode == "coco_rle":
        pytest.importorskip("pycocotools", reason="the official coco_rle output needs pycocotools")
    official, ours = exact
    kwargs = dict(points_per_side=6, use_m2m=True, output_mode=output_mode, box_nms_thresh=1.0,
                  pred_iou_thresh=0.6, stability_score_thresh=0.8)
    theirs = _official_generator(official, **kwargs).generate(images[0])
    mine = SAM2AutomaticMaskGenerator(ours, **kwargs).generate(images[0])
    assert len(theirs) >= 5
    _assert_same_records(theirs, mine)


def test_rle_round_trip_and_coco_compression():
    gen = np.random.default_rng(0)
    for shape in [(7, 5), (1, 1), (40, 33)]:
        for density in (0.0, 0.3, 1.0):
            mask = gen.random(shape) < density
            rle = mask_to_rle(mask)
            assert np.array_equal(rle_to_mask(rle), mask)
            assert sum(rle["counts"]) == mask.size and sum(rle["counts"][1::2]) == mask.sum()
    mask_utils = pytest.importorskip("pycocotools.mask", reason="pycocotools checks the compressed form")
    for density in (0.1, 0.5, 0.9):
        mask = gen.random((57, 31)) < density
        theirs = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert compress_rle(mask_to_rle(mask))["counts"] == theirs["counts"].decode()


def test_bad_input_is_refused_with_the_problem_named(checkpoint):
    _, ours = checkpoint
    predictor = SAM2ImagePredictor(ours)
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(point_coords=np.array([[1.0, 2.0]]), point_labels=np.array([1]))
    predictor.set_image(np.zeros((40, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="point_labels"):
        predictor.predict(point_coords=np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="points must be"):
        predictor._predictor.predict(points=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="box must be"):
        predictor._predictor.predict(box=np.zeros(3))
    with pytest.raises(IndexError, match="image_index 1"):
        predictor._predictor.predict(points=[[1, 2]], image_index=1)
    with pytest.raises(ValueError, match="uint8"):
        predictor.set_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="exactly one"):
        MaskGenerator(ours, points_per_side=None)
    with pytest.raises(ValueError, match="output_mode"):
        MaskGenerator(ours, output_mode="png")
    with pytest.raises(ValueError, match="crop"):
        MaskGenerator(ours, crop_n_layers=1).generate_from_features(None, (4, 4))
