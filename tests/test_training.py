"""The training pipeline: synthetic videos, clips, losses, the rollout through memory, resumable training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import tiny_config
from videos import write_jpegs

from streams.masks import write_palette_png
from vos.cli import main
from vos.model.sam2 import HeadOutput, SAM2Model
from vos.train.clips import ClipSampler, ClipSettings, DavisVideos
from vos.train.loss import dice, mask_iou, sigmoid_focal, step_loss
from vos.train.rollout import PromptSimulation, rollout
from vos.train.synthetic import generate_video
from vos.train.trainer import Trainer, TrainSettings
from vos.weights.checkpoint import read_checkpoint, save_model, training_history

PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * (256 * 3 - 12)


def write_davis_root(root: Path, videos: dict[str, object]) -> Path:
    """A DAVIS-layout root (JPEGs, palette PNGs, ImageSets) from synthetic videos."""
    for name, video in videos.items():
        write_jpegs(list(video.frames), root / "JPEGImages" / "480p" / name)
        ann = root / "Annotations" / "480p" / name
        ann.mkdir(parents=True)
        for i, mask in enumerate(video.masks):
            write_palette_png(ann / f"{i:05d}.png", mask, PALETTE)
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "train.txt").write_text("\n".join(videos) + "\n")
    return root


# ---------------------------------------------------------------- synthetic videos
def test_synthetic_video_is_deterministic_and_labels_every_object():
    a = generate_video(5, num_frames=12, size=(60, 80), num_objects=3, num_distractors=2)
    b = generate_video(5, num_frames=12, size=(60, 80), num_objects=3, num_distractors=2)
    c = generate_video(6, num_frames=12, size=(60, 80), num_objects=3, num_distractors=2)
    assert a.frames.shape == (12, 60, 80, 3) and a.frames.dtype == np.uint8
    assert a.masks.shape == (12, 60, 80)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.frames, c.frames)
    assert set(np.unique(a.masks)) == {0, 1, 2, 3} and a.num_objects == 3


def test_synthetic_objects_leave_and_come_back():
    """Motion reflects outside the frame, so over a long video an object disappears and reappears."""
    found = False
    for seed in range(10):
        video = generate_video(seed, num_frames=60, size=(48, 64), num_objects=1, num_distractors=0)
        visible = video.masks.reshape(60, -1).any(1)
        gone = np.flatnonzero(~visible)
        if len(gone) and visible[gone[0]:].any():
            found = True
            break
    assert found


# ---------------------------------------------------------------- clips
def test_clip_sampler_gives_visible_objects_at_model_size(tmp_path):
    videos = {f"seq{i}": generate_video(i, num_frames=10, size=(48, 64), num_objects=2, num_distractors=0) for i in range(2)}
    davis = DavisVideos(write_davis_root(tmp_path, videos), tmp_path / "ImageSets" / "train.txt")
    assert davis.names == ["seq0", "seq1"] and davis.videos[0][0].shape == (10, 48, 64, 3)
    for synthetic_prob in (0.0, 1.0):
        sampler = ClipSampler(64, davis, ClipSettings(num_frames=5, max_objects=1, synthetic_prob=synthetic_prob))
        clip = sampler.sample(np.random.default_rng(0))
        assert clip.images.shape == (5, 3, 64, 64) and clip.images.dtype == torch.float32
        assert clip.masks.shape == (5, 1, 64, 64) and clip.masks.dtype == torch.bool
        assert clip.masks[0].flatten(1).any(1).all()


def test_davis_reader_names_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        DavisVideos(tmp_path)


# ---------------------------------------------------------------- losses
def test_losses_vanish_on_a_perfect_prediction_and_grow_on_a_wrong_one():
    target = torch.zeros(1, 1, 16, 16)
    target[..., 4:12, 4:12] = 1
    good = target * 40 - 20
    bad = -good
    assert sigmoid_focal(good, target).item() < 1e-6 < sigmoid_focal(bad, target).item()
    assert dice(good, target).item() < 1e-6 and dice(bad, target).item() > 0.9
    assert mask_iou(good, target).item() == 1.0 and mask_iou(bad, target).item() == 0.0
    assert mask_iou(-torch.ones(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)).item() == 1.0


def _heads(multimasks: torch.Tensor, ious: torch.Tensor, score: float) -> HeadOutput:
    b = multimasks.shape[0]
    return HeadOutput(multimasks, multimasks, ious, multimasks[:, :1], multimasks[:, :1],
                      torch.zeros(b, 8), torch.full((b, 1), score))


def test_only_the_best_candidate_mask_is_backpropagated():
    target = torch.zeros(1, 1, 16, 16)
    target[..., :8, :] = 1
    good = target[0, 0] * 20 - 10
    masks = torch.stack([-good, good, torch.zeros(16, 16)])[None].requires_grad_()
    terms = step_loss(_heads(masks, torch.tensor([[0.0, 1.0, 0.5]]), 5.0), target)
    (terms["focal"] + terms["dice"]).sum().backward()
    grad = masks.grad.abs().flatten(2).sum(-1)[0]
    assert grad[1] > 0 and grad[0] == 0 and grad[2] == 0
    # The IoU head is taught on every candidate: here its guesses are exact.
    assert terms["iou"].item() == pytest.approx(0.5 / 3, abs=1e-6)


def test_absent_object_is_taught_only_through_the_object_score():
    masks = torch.randn(2, 3, 8, 8)
    target = torch.zeros(2, 1, 8, 8)
    terms = step_loss(_heads(masks, torch.rand(2, 3), 3.0), target)
    assert terms["focal"].abs().sum() == 0 and terms["dice"].abs().sum() == 0 and terms["iou"].abs().sum() == 0
    assert (terms["object"] > 3).all()  # confident "present" on an absent object costs


# ---------------------------------------------------------------- rollout and trainer
@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return SAM2Model(tiny_config(image_size=64)).train()


def test_rollout_trains_through_the_memory(tiny_model):
    sampler = ClipSampler(64, None, ClipSettings(num_frames=4, max_objects=2))
    rng = np.random.default_rng(1)
    terms = rollout(tiny_model, sampler.sample(rng), rng)
    assert set(terms) == {"focal", "dice", "iou", "object"}
    loss = sum(terms.values())
    assert torch.isfinite(loss)
    loss.backward()
    grads = {n: p.grad for n, p in tiny_model.named_parameters()}
    for prefix in ("memory_attention.", "memory_encoder.", "obj_ptr_proj.", "image_encoder.", "sam_mask_decoder."):
        assert any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix)), prefix
    assert grads["maskmem_tpos_enc"] is not None and grads["maskmem_tpos_enc"].abs().sum() > 0


def _trainer(model, out, steps):
    sampler = ClipSampler(64, None, ClipSettings(num_frames=3, max_objects=2))
    return Trainer(model, sampler, out, TrainSettings(steps=steps, warmup=2, checkpoint_every=2, seed=7))


def test_training_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    straight = SAM2Model(tiny_config(image_size=64))
    _trainer(straight, tmp_path / "a", 4).run(progress=False)

    torch.manual_seed(0)
    first = SAM2Model(tiny_config(image_size=64))
    _trainer(first, tmp_path / "b", 2).run(progress=False)
    torch.manual_seed(123)  # a fresh process: other initial weights, restored from the checkpoint
    resumed = SAM2Model(tiny_config(image_size=64))
    trainer = _trainer(resumed, tmp_path / "b", 4)
    assert trainer.resume() and trainer.step == 2
    trainer.run(progress=False)
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
    log = (tmp_path / "b" / "log.jsonl").read_text().splitlines()
    assert len(log) == 2 and '"step": 4' in log[-1]
    state, config = read_checkpoint(tmp_path / "b" / "model.pt")
    assert config == resumed.config


def test_train_only_changes_the_named_parameters_and_names_a_prefix_that_matches_none(tmp_path):
    torch.manual_seed(0)
    model = SAM2Model(tiny_config(image_size=64))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    sampler = ClipSampler(64, None, ClipSettings(num_frames=3, max_objects=2))
    head = "sam_mask_decoder.iou_prediction_head."
    settings = TrainSettings(steps=3, warmup=1, checkpoint_every=3, seed=7, trainable=(head,))
    Trainer(model, sampler, tmp_path / "run", settings).run(progress=False)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith(head) for k in changed)
    assert len(changed) == sum(1 for k, _ in model.named_parameters() if k.startswith(head))
    with pytest.raises(ValueError, match="'sam_mask_decoder.iou_head'.*sam_mask_decoder"):
        Trainer(SAM2Model(tiny_config(image_size=64)), sampler, tmp_path / "other",
                TrainSettings(trainable=("sam_mask_decoder.iou_head",)))


def test_vos_train_passes_train_only_to_the_settings(tmp_path, monkeypatch):
    seen = {}

    def run(self, progress=True):
        seen["settings"] = self.settings
        seen["trainable"] = {n for n, p in self.model.named_parameters() if p.requires_grad}
        return {}

    monkeypatch.setattr(Trainer, "run", run)
    assert main(["train", "--out", str(tmp_path / "run"), "--config", "vos_small", "--image-size", "64",
                 "--steps", "1", "--train-only", "sam_mask_decoder.iou_prediction_head"]) == 0
    assert seen["settings"].trainable == ("sam_mask_decoder.iou_prediction_head",)
    assert seen["trainable"] and all(n.startswith("sam_mask_decoder.iou_prediction_head") for n in seen["trainable"])


def test_resume_keeps_the_checkpoints_lineage_not_the_new_processs_start(tmp_path):
    torch.manual_seed(0)
    model = SAM2Model(tiny_config(image_size=64))
    sampler = ClipSampler(64, None, ClipSettings(num_frames=3, max_objects=2))
    settings = TrainSettings(steps=4, warmup=2, checkpoint_every=2, seed=7)
    first = Trainer(model, sampler, tmp_path, TrainSettings(steps=2, warmup=2, checkpoint_every=2, seed=7),
                    lineage=[{"from": "stage-1.pt"}])
    first.run(progress=False)
    again = Trainer(SAM2Model(tiny_config(image_size=64)), sampler, tmp_path, settings,
                    lineage=[{"from": "somewhere-else.pt"}])
    assert again.resume()
    again.run(progress=False)
    history = training_history(tmp_path / "model.pt")
    assert history[0] == {"from": "stage-1.pt"} and len(history) == 2 and history[1]["steps_done"] == 4


def test_resume_reads_a_config_stored_before_a_field_existed_and_refuses_another(tmp_path):
    torch.manual_seed(0)
    model = SAM2Model(tiny_config(image_size=64))
    _trainer(model, tmp_path / "run", 2).run(progress=False)
    path = tmp_path / "run" / "last.pt"
    data = torch.load(path, weights_only=True)
    del data["config"]["dynamic_multimask_via_stability"]  # as written by a version without the field
    torch.save(data, path)
    assert _trainer(SAM2Model(tiny_config(image_size=64)), tmp_path / "run", 4).resume()
    with pytest.raises(ValueError, match="another model config"):
        _trainer(SAM2Model(tiny_config(image_size=128)), tmp_path / "run", 4).resume()


def test_training_lowers_the_loss_on_one_clip(tiny_model):
    sampler = ClipSampler(64, None, ClipSettings(num_frames=3, max_objects=1))
    clip = sampler.sample(np.random.default_rng(3))
    optimizer = torch.optim.AdamW(tiny_model.parameters(), lr=2e-3)
    losses = []
    for step in range(25):
        rng = np.random.default_rng([3, 0])  # the same prompts every step
        loss = sum(rollout(tiny_model, clip, rng).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_vos_train_command_fine_tunes_a_checkpoint_and_validates(tmp_path, capsys):
    videos = {f"seq{i}": generate_video(i, num_frames=6, size=(48, 64), num_objects=1, num_distractors=0) for i in range(2)}
    root = write_davis_root(tmp_path / "davis", videos)
    torch.manual_seed(0)
    init = save_model(SAM2Model(tiny_config(image_size=64)), tmp_path / "init.pt")
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--davis", str(root), "--init", str(init), "--steps", "2",
            "--num-frames", "3", "--checkpoint-every", "1", "--val-root", str(root), "--threads", "1"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "validation: val_J&F-Mean" in printed
    assert (out / "model.pt").exists() and (out / "last.pt").exists()
    assert (out / "validation" / "step0000002" / "seq0" / "00005.png").exists()
    assert main(args[:-6] + ["--steps", "3"]) == 0
    assert "resumed from" in capsys.readouterr().out


def test_vos_train_initialises_the_trunk_from_mae_hiera_weights(tmp_path):
    """--init-trunk takes a hiera-transformer checkpoint ({"model_state": ...}) through the converter; with
    a zero learning rate the saved trunk is exactly the converted one."""
    hiera = pytest.importorskip("hiera", reason="hiera-transformer is not installed")
    from vos.model.config import get_config
    from vos.weights.mae import convert_hiera_state_dict

    trunk = get_config("vos_small").trunk
    reference = hiera.Hiera(embed_dim=trunk.embed_dim, num_heads=trunk.num_heads, stages=trunk.stages)
    torch.save({"model_state": reference.state_dict()}, tmp_path / "mae.pth")
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--init-trunk", str(tmp_path / "mae.pth"), "--steps", "1", "--lr", "0",
                 "--num-frames", "2", "--threads", "1"]) == 0
    state, _ = read_checkpoint(out / "model.pt")
    for key, value in convert_hiera_state_dict(reference.state_dict(), trunk).items():
        torch.testing.assert_close(state[f"image_encoder.trunk.{key}"], value, rtol=0, atol=0, msg=key)


def test_one_frame_clips_always_train_interactive_prompts(tmp_path):
    """A one-frame clip is SAM-style image training: a clicked or boxed frame with correction clicks, whatever
    the mask share (a mask prompt there would leave nothing to learn)."""
    torch.manual_seed(0)
    model = SAM2Model(tiny_config(image_size=64))
    sampler = ClipSampler(64, None, ClipSettings(num_frames=1, max_objects=2))
    for mask_prob in (0.0, 1.0):
        trainer = Trainer(model, sampler, tmp_path / str(mask_prob), TrainSettings(steps=2, warmup=1),
                          PromptSimulation(mask_prob=mask_prob))
        logged = trainer.train_step()
        assert {"focal", "dice", "iou", "object"} <= set(logged) and logged["loss"] > 0


def test_image_prob_mixes_single_frames_into_clip_training():
    sampler = ClipSampler(64, None, ClipSettings(num_frames=4, image_prob=0.5, max_objects=1))
    lengths = {len(sampler.sample(np.random.default_rng(i)).images) for i in range(12)}
    assert lengths == {1, 4}


def test_vos_train_passes_the_prompt_mix_to_the_simulation(tmp_path, monkeypatch):
    seen = {}

    def run(self, progress=True):
        seen["prompts"] = self.prompts
        return {}

    monkeypatch.setattr(Trainer, "run", run)
    assert main(["train", "--out", str(tmp_path / "run"), "--config", "vos_small", "--image-size", "64",
                 "--mask-prob", "0", "--box-prob", "0.25", "--num-frames", "1", "--steps", "1"]) == 0
    assert seen["prompts"].mask_prob == 0.0 and seen["prompts"].box_prob == 0.25


# ---------------------------------------------------------------- copy-paste composites
def _image_set(root: Path, count: int = 4) -> Path:
    """An interactive image set: JPEGs with one-object masks; the first two files show one image."""
    import cv2

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    shared = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for i in range(count):
        image = shared if i < 2 else rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "images" / f"obj{i}.jpg"), image)
        mask = np.zeros((48, 64), np.uint8)
        mask[5 + 10 * (i % 2) : 25 + 10 * (i % 2), 5 + 20 * (i % 2) : 30 + 20 * (i % 2)] = 1
        write_palette_png(root / "masks" / f"obj{i}.png", mask, PALETTE)
    return root


def test_image_sets_merge_objects_of_one_image_and_hold_out_whole_images(tmp_path):
    from vos.train.composite import read_image_set

    root = _image_set(tmp_path / "set")
    scenes = read_image_set(root)
    assert len(scenes) == 3  # obj0 and obj1 share their image
    assert sorted(np.unique(scenes[0].masks).tolist()) == [0, 1, 2]
    held = read_image_set(root, exclude={"obj1"})  # its image goes, with obj0 on it
    assert len(held) == 2 and all(np.unique(s.masks).tolist() == [0, 1] for s in held)


def test_composites_paste_real_objects_with_exact_masks(tmp_path):
    from vos.train.composite import CompositeSource, composite_video

    source = CompositeSource.from_data([_image_set(tmp_path / "set")], max_pasted=3)
    frames, masks = composite_video(np.random.default_rng(1), source.scenes[1], source.cutouts, 6, (60, 100), num_pasted=3)
    assert frames.shape == (6, 60, 100, 3) and frames.dtype == np.uint8 and masks.shape == (6, 60, 100)
    ids = [i for i in np.unique(masks) if i]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) >= 2  # renumbered 1..N
    again = composite_video(np.random.default_rng(1), source.scenes[1], source.cutouts, 6, (60, 100), num_pasted=3)
    np.testing.assert_array_equal(again[1], masks)

    sampler = ClipSampler(64, None, ClipSettings(num_frames=4, max_objects=3, synthetic_prob=0.0, composite_prob=1.0), source)
    clip = sampler.sample(np.random.default_rng(0))
    assert clip.images.shape == (4, 3, 64, 64) and clip.masks.shape[0] == 4
    assert clip.masks[0].flatten(1).any(1).all()


def test_vos_train_on_composites_from_an_image_set(tmp_path):
    root = _image_set(tmp_path / "set")
    (tmp_path / "held.txt").write_text("obj3\n")
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--config", "vos_small", "--image-size", "64", "--images", str(root),
                 "--exclude-images", str(tmp_path / "held.txt"), "--composite-prob", "1", "--synthetic-prob", "0",
                 "--num-frames", "1", "--mask-prob", "0", "--steps", "2", "--checkpoint-every", "2"]) == 0
    assert (out / "model.pt").exists()


def test_trained_weights_carry_their_lineage_and_a_further_run_extends_it(tmp_path, capsys):
    first = tmp_path / "first"
    args = ["train", "--out", str(first), "--config", "vos_small", "--image-size", "64", "--num-frames", "2",
            "--steps", "2", "--checkpoint-every", "2"]
    assert main(args) == 0
    (run,) = training_history(first / "model.pt")
    assert run["command"] == "vos " + " ".join(args) and run["steps_done"] == 2
    assert run["settings"]["steps"] == 2 and run["clips"]["num_frames"] == 2 and "mask_prob" in run["prompts"]
    second = tmp_path / "second"
    assert main(["train", "--out", str(second), "--init", str(first / "model.pt"), "--num-frames", "1",
                 "--steps", "1", "--checkpoint-every", "1"]) == 0
    history = training_history(second / "model.pt")
    assert [h["steps_done"] for h in history] == [2, 1] and history[0] == run
    assert training_history(second / "last.pt") == history
    capsys.readouterr()
    assert main(["info", str(second / "model.pt")]) == 0
    out = capsys.readouterr().out
    assert "training 1:  2 steps: vos train" in out and "training 2:  1 steps: vos train" in out


def test_a_batch_accumulates_the_gradients_of_its_clips(tmp_path):
    """``batch`` clips per optimiser step: the step's gradient is the mean of the clips' gradients, each clip
    drawn from ``(seed, step, i)``, and the logged loss is their mean."""
    torch.manual_seed(0)
    model = SAM2Model(tiny_config(image_size=64))
    sampler = ClipSampler(64, None, ClipSettings(num_frames=1, max_objects=2))
    settings = TrainSettings(steps=1, warmup=1, batch=2, seed=5)
    expected_loss, expected_grads = 0.0, None
    for i in range(2):
        rng = np.random.default_rng([5, 0, i])
        torch.manual_seed((5 * 1_000_003) * 64 + i)
        model.zero_grad(set_to_none=True)
        loss = sum(rollout(model, sampler.sample(rng), rng).values())
        loss.backward()
        grads = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
        expected_grads = grads if expected_grads is None else [a + b for a, b in zip(expected_grads, grads)]
        expected_loss += float(loss.detach()) / 2
    trainer = Trainer(model, sampler, tmp_path, settings)
    trainer.optimizer.step = lambda: None  # keep the weights: compare the accumulated gradient itself
    logged = trainer.train_step()
    assert logged["loss"] == pytest.approx(expected_loss, rel=1e-5)
    got = [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    scale = min(1.0, settings.grad_clip / float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g / 2) for g in expected_grads]))))
    for g, e in zip(got, expected_grads):
        torch.testing.assert_close(g, e / 2 * scale, rtol=1e-4, atol=1e-6)


def test_a_run_is_set_up_from_python_as_the_command_line_sets_it_up(tmp_path):
    from vos.train.setup import clip_sampler, starting_model, validation_set

    a, lineage = starting_model(config="vos_small", image_size=64, seed=3)
    b, _ = starting_model(config="vos_small", image_size=64, seed=3)
    assert lineage == [] and a.image_size == 64
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    save_model(a, tmp_path / "w.pt", extra={"training": [{"command": "vos train ...", "steps_done": 5}]})
    fine, lineage = starting_model(tmp_path / "w.pt")
    assert lineage == [{"command": "vos train ...", "steps_done": 5}] and fine.image_size == 64

    clips = ClipSettings(num_frames=2, max_objects=1, synthetic_prob=1.0)
    clip = clip_sampler(64, clips).sample(np.random.default_rng(0))
    assert clip.images.shape[-2:] == (64, 64)
    with pytest.raises(ValueError, match="--images.*--davis"):
        clip_sampler(64, ClipSettings(composite_prob=0.5))

    root = write_davis_root(tmp_path / "davis", {"b": generate_video(1, num_frames=3, size=(48, 64)),
                                                 "a": generate_video(2, num_frames=3, size=(48, 64))})
    assert validation_set(root) == (root, ["a", "b"])
    assert validation_set(root, root / "ImageSets" / "train.txt") == (root, ["b", "a"])


def test_bfloat16_autocast_holds_the_float32_losses(tiny_model):
    # Training in bfloat16 on a CPU that computes it natively (vos train --precision auto) must learn what
    # float32 would: the same clip and weights give losses within a few percent and gradients that point the
    # same way. Runs on any CPU (slowly where bfloat16 is not native).
    sampler = ClipSampler(64, None, ClipSettings(num_frames=3, max_objects=2))
    clip = sampler.sample(np.random.default_rng(5))
    results = {}
    for precision in ("float32", "bfloat16"):
        tiny_model.zero_grad(set_to_none=True)
        settings = TrainSettings(precision=precision)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.autocast(torch.device("cpu"))):
            terms = rollout(tiny_model, clip, np.random.default_rng(2))
        loss = sum(terms.values())
        loss.backward()
        grad = torch.cat([p.grad.flatten() for p in tiny_model.parameters() if p.grad is not None])
        results[precision] = (loss.item(), grad)
    (loss32, grad32), (loss16, grad16) = results["float32"], results["bfloat16"]
    assert abs(loss16 - loss32) <= 0.05 * abs(loss32), (loss16, loss32)
    assert torch.nn.functional.cosine_similarity(grad16, grad32, dim=0) > 0.95
    with pytest.raises(ValueError, match="training precision"):
        TrainSettings(precision="float16")
