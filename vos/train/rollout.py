"""One training clip through the model, as SAM 2 is trained: prompts simulated on 1-2 conditioning frames,
iterative correction clicks, every other frame tracked through the memory bank, gradients through all of it."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from memory import MemoryBank, MemorySettings

from ..model.interface import HeadOutput
from ..model.sam2 import SAM2Model
from ..tracking.core import clicked_heads, memory_from_logits, prior_logits, tracked_heads
from .clips import Clip
from .loss import step_loss
from .prior import PriorSimulation, deform_mask


@dataclass(frozen=True)
class PromptSimulation:
    """SAM 2's training prompts: the ground-truth mask with ``mask_prob``, otherwise a box with
    ``box_prob`` or a click; a second conditioning frame with ``second_prompt_prob``; up to
    ``max_corrections`` correction clicks on each clicked conditioning frame."""

    mask_prob: float = 0.5
    box_prob: float = 0.5
    second_prompt_prob: float = 0.5
    max_corrections: int = 3
    box_noise: float = 0.1
    box_noise_max_px: float = 5.0


def _sample_clicks(rng: np.random.Generator, error: torch.Tensor, positive: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One click per object, uniformly in its error region: ``error, positive (B, S, S)`` bool, where
    ``positive`` marks the missed object pixels. Returns ``coords (B, 1, 2)`` (x, y) and ``labels (B, 1)``."""
    coords, labels = [], []
    for err, pos in zip(error, positive):
        ys, xs = torch.nonzero(err, as_tuple=True)
        if len(ys) == 0:  # nothing to correct: a neutral click where the object is, if anywhere
            ys, xs = torch.nonzero(pos, as_tuple=True)
            if len(ys) == 0:
                coords.append(torch.zeros(2))
                labels.append(-1)
                continue
        i = int(rng.integers(len(ys)))
        y, x = int(ys[i]), int(xs[i])
        # Pixel indices, as a user's click is: the prompt encoder moves every point to its pixel's centre.
        coords.append(torch.tensor([float(x), float(y)]))
        labels.append(1 if pos[y, x] else 0)
    return torch.stack(coords)[:, None], torch.tensor(labels, dtype=torch.int32)[:, None]


def _boxes(rng: np.random.Generator, masks: torch.Tensor, sim: PromptSimulation) -> torch.Tensor:
    """Noisy bounding boxes of ``masks (B, S, S)`` as two corner points ``(B, 2, 2)``."""
    out = []
    size = masks.shape[-1]
    for m in masks:
        ys, xs = torch.nonzero(m, as_tuple=True)
        box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        w, h = box[2] - box[0], box[3] - box[1]
        scale = np.minimum(np.array([w, h, w, h]) * sim.box_noise, sim.box_noise_max_px)
        box = (box + rng.normal(0, 1, 4) * scale).clip(0, size)
        out.append(torch.from_numpy(box.astype(np.float32)).view(2, 2))
    return torch.stack(out)


def rollout(
    model: SAM2Model,
    clip: Clip,
    rng: np.random.Generator,
    sim: PromptSimulation = PromptSimulation(),
    outputs: dict[int, torch.Tensor] | None = None,
    prior: PriorSimulation = PriorSimulation(),
) -> dict[str, torch.Tensor]:
    """The summed loss terms of one clip, normalised by its number of objects. ``outputs``, when given,
    receives each frame's chosen mask logits ``(N, 1, S, S)``, detached. A model that tracks with the
    previous mask sees, on each tracked frame, what ``prior`` draws for each object."""
    device = model.device
    images, masks = clip.images.to(device), clip.masks.to(device)
    num_frames, num_obj = masks.shape[:2]
    feats = model.encode_image(images)
    settings = MemorySettings(storage_dtype=torch.float32, keep_gradients=True, only_past_pointers=False, max_prompted_frames=None)
    cfg = model.config
    banks = [MemoryBank(settings, cfg.num_maskmem, cfg.use_signed_tpos_enc_to_obj_ptrs) for _ in range(num_obj)]
    prompted = [0]
    if num_frames > 1 and rng.random() < sim.second_prompt_prob:
        prompted.append(int(rng.integers(1, num_frames)))
    order = prompted + [t for t in range(num_frames) if t not in prompted]
    totals: dict[str, torch.Tensor] = {}
    low_res: dict[int, torch.Tensor] = {}  # each done frame's chosen logits (N, 1, h, w), detached

    def add(terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            totals[k] = totals.get(k, 0) + v.sum() / num_obj

    for t in order:
        vision = feats.vision_features[t : t + 1].expand(num_obj, -1, -1, -1)
        high_res = [x[t : t + 1].expand(num_obj, -1, -1, -1) for x in feats.backbone_fpn[:2]]
        target = masks[t].float()[:, None]  # (B, 1, S, S)
        binarize = False
        if t in prompted:
            all_visible = bool(masks[t].flatten(1).any(1).all())
            # A mask prompt on a one-frame clip would leave nothing to learn: images always get clicks or boxes.
            if not all_visible or (num_frames > 1 and rng.random() < sim.mask_prob):
                heads = model.mask_as_output(vision, high_res, target)
            else:
                heads = _clicked(model, vision, high_res, masks[t], rng, sim, add)
                binarize = True
        else:
            selections = [bank.select(t, num_frames=num_frames) for bank in banks]
            previous = None
            if cfg.track_with_previous_mask:
                size = (model.image_size // 4,) * 2
                previous = prior_logits(_previous_masks(low_res, t, masks[t], size, rng, prior), size, device)
            heads = tracked_heads(model, feats.vision_features[t : t + 1], feats.vision_pos_enc[-1][t : t + 1], high_res,
                                  selections, previous)
            add(step_loss(heads, target))
        low_res[t] = heads.low_res_masks.detach()
        if outputs is not None:
            outputs[t] = heads.high_res_masks.detach()
        # Memories come from the low-resolution logits brought back to full size, as the trackers encode
        # them (the same as the high-resolution masks, except for a mask prompt, which they see blurred).
        memory = memory_from_logits(model, vision, heads.low_res_masks, heads.object_score, binarize)
        for i, bank in enumerate(banks):
            bank.add(t, memory[i], heads.obj_ptr[i], float(heads.object_score[i, 0].detach()), prompted=t in prompted)
    return totals


def _previous_masks(
    done: dict[int, torch.Tensor], t: int, masks: torch.Tensor, size: tuple[int, int], rng: np.random.Generator,
    sim: PriorSimulation,
) -> list[torch.Tensor | None]:
    """Each object's previous mask on tracked frame ``t`` as :func:`prior_logits` takes it: the model's own
    latest output before ``t`` (as at inference), nothing, or the true mask ``masks (N, S, S)`` deformed."""
    earlier = [k for k in done if k < t]
    out: list[torch.Tensor | None] = []
    for i in range(len(masks)):
        r = rng.random()
        if r < sim.own_prob and earlier:
            out.append(done[max(earlier)][i : i + 1])
        elif r < sim.own_prob + sim.none_prob:
            out.append(None)
        else:
            true = masks[i].cpu().numpy()
            others = masks[[j for j in range(len(masks)) if j != i]].cpu().numpy().any(0) if len(masks) > 1 else None
            deformed = deform_mask(true, rng, sim, others).astype(np.float32)
            low = cv2.resize(deformed, size[::-1], interpolation=cv2.INTER_AREA)
            out.append(torch.from_numpy(low - 0.5)[None, None])  # > 0 where at least half covered
    return out


def _clicked(model: SAM2Model, vision, high_res, masks: torch.Tensor, rng, sim: PromptSimulation, add) -> HeadOutput:
    """A prompted frame from a click or a box (no memory, as every initial prompt in SAM 2's training),
    then correction clicks, each fed the previous logits; every step is a loss term."""
    features = model.without_memory(vision)
    target = masks.float()[:, None]
    if rng.random() < sim.box_prob:
        coords = _boxes(rng, masks, sim).to(model.device)
        labels = torch.tensor([[2, 3]], dtype=torch.int32, device=model.device).expand(len(masks), -1)
    else:
        coords, labels = _sample_clicks(rng, masks, masks)
        coords, labels = coords.to(model.device), labels.to(model.device)
    heads = clicked_heads(model, features, high_res, coords, labels, None, model.use_multimask(True, coords.shape[1]))
    add(step_loss(heads, target))
    for _ in range(int(rng.integers(0, sim.max_corrections + 1))):
        pred = heads.high_res_masks[:, 0].detach() > 0
        click, label = _sample_clicks(rng, pred != masks, masks & ~pred)
        coords = torch.cat([coords, click.to(model.device)], 1)
        labels = torch.cat([labels, label.to(model.device)], 1)
        # Multimask only where the trackers would use it for this many clicks (none, for SAM 2's configs).
        multimask = model.use_multimask(True, coords.shape[1])
        heads = clicked_heads(model, features, high_res, coords, labels, heads.low_res_masks.detach(), multimask)
        add(step_loss(heads, target))
    return heads
