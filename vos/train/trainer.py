"""The training loop: AdamW with a warm-up and cosine schedule, gradient clipping, bf16 autocast on GPUs and on
CPUs with native bfloat16 arithmetic,
checkpoints that resume exactly, and a J&F validation pass with the ``evaluation`` code.

Every step draws its clip from a generator seeded by ``(seed, step)``, so a run resumed from a checkpoint
sees the same clips as one that never stopped.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..model.config import ModelConfig
from ..model.kernels import CPU_BFLOAT16
from ..model.sam2 import SAM2Model
from ..weights.checkpoint import save_model
from .clips import ClipSampler
from .prior import PriorSimulation
from .rollout import PromptSimulation, rollout


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation: ``steps`` optimiser steps of ``batch`` clips each (their gradients summed one clip at a
    time, so memory is one clip's), peak ``lr`` after ``warmup`` steps, cosine down to ``lr *
    final_lr_ratio``; a checkpoint every ``checkpoint_every`` steps and a validation every ``validate_every``
    (0: at the end only). ``precision``: ``"bfloat16"`` runs the forward pass under bfloat16 autocast,
    ``"float32"`` not, ``"auto"`` where it pays: on a GPU, or on a CPU with native bfloat16 arithmetic
    (AVX-512 BF16 / AMX; on other CPUs bfloat16 is slower than float32). ``trainable``: name prefixes of the
    parameters to train (empty: all); the others stay frozen, and nothing is computed for their gradients."""

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"training precision must be auto, float32 or bfloat16, got {self.precision!r}")

    def autocast(self, device: torch.device) -> bool:
        """Whether the forward pass runs under bfloat16 autocast on ``device``."""
        if self.precision == "auto":
            return device.type == "cuda" or (device.type == "cpu" and CPU_BFLOAT16)
        return self.precision == "bfloat16"

    steps: int = 20000
    batch: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.1
    warmup: int = 200
    final_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    validate_every: int = 0
    precision: str = "float32"
    trainable: tuple[str, ...] = ()

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = min((step - self.warmup) / max(self.steps - self.warmup, 1), 1.0)
        low = self.lr * self.final_lr_ratio
        return low + (self.lr - low) * 0.5 * (1 + math.cos(math.pi * progress))


def _param_groups(model: SAM2Model, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms, embeddings and other 1-D or positional parameters."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or "pos_embed" in name or name.endswith(("_embed", "_enc", "no_obj_ptr", "no_obj_embed_spatial")):
            plain.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def _freeze_all_but(model: SAM2Model, prefixes: tuple[str, ...]) -> None:
    """Train only the parameters whose names start with one of ``prefixes`` (all when there are none)."""
    if not prefixes:
        return
    names = [name for name, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in names):
            raise ValueError(f"no parameter of the {model.config.name} model is named {prefix!r}... "
                             f"(top-level modules: {', '.join(sorted({n.split('.')[0] for n in names}))})")
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(prefixes))


class Trainer:
    """Trains ``model`` on clips from ``sampler``, writing into ``out_dir``:

    * ``last.pt``: model, optimiser and step, to resume from (vos format, loadable as a model too);
    * ``model.pt``: the weights at the last checkpoint, with their lineage;
    * ``log.jsonl``: one line per checkpoint with the mean losses, and J&F when validated.

    The lineage (``"training"`` in both files, :func:`vos.weights.checkpoint.training_history`) is the history of
    the weights it started from, ``lineage``, followed by this run: ``run`` (what it was asked to do, e.g. the
    command line) with its settings and the steps done. Weights that carry it can be trained further by
    anyone, long after the run that made them (the optimiser's moments are not kept there: a new run
    rebuilds them during its warm-up).
    """

    def __init__(
        self,
        model: SAM2Model,
        sampler: ClipSampler,
        out_dir: str | Path,
        settings: TrainSettings = TrainSettings(),
        prompts: PromptSimulation = PromptSimulation(),
        prior: PriorSimulation = PriorSimulation(),
        validation: tuple[Path, list[str]] | None = None,
        lineage: list[dict] = (),
        run: dict | None = None,
    ) -> None:
        self.model = model
        self.sampler = sampler
        self.out = Path(out_dir)
        self.settings = settings
        self.prompts = prompts
        self.prior = prior
        self.validation = validation
        self.lineage = list(lineage)
        self.run_info = dict(run or {})
        _freeze_all_but(model, settings.trainable)
        self.optimizer = torch.optim.AdamW(_param_groups(model, settings.weight_decay), lr=settings.lr)
        self.step = 0

    # ------------------------------------------------------------------ checkpoints
    def history(self) -> list[dict]:
        """The lineage of the current weights, this run included."""
        this = {**self.run_info, "settings": asdict(self.settings), "clips": asdict(self.sampler.settings),
                "prompts": asdict(self.prompts), "steps_done": self.step}
        if self.model.config.track_with_previous_mask:
            this["prior"] = asdict(self.prior)
        return self.lineage + [json.loads(json.dumps(this))]  # plain values only, as a safe load needs

    def save(self) -> Path:
        history = self.history()
        path = save_model(self.model, self.out / "last.pt", extra={
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "settings": asdict(self.settings),
            "training": history,
        })
        save_model(self.model, self.out / "model.pt", extra={"training": history})
        return path

    def resume(self) -> bool:
        """Continue from ``out_dir/last.pt`` if it exists. Returns whether it did."""
        path = self.out / "last.pt"
        if not path.exists():
            return False
        data = torch.load(path, map_location="cpu", weights_only=True)
        # Compared as configs, not dicts: a config stored before a field was added still reads the same.
        if ModelConfig.from_dict(data["config"]) != self.model.config:
            raise ValueError(f"{path} was trained with another model config ({data['config']['name']!r})")
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.step = int(data["step"])
        # The weights' past is the checkpoint's, whatever this process was told to start from.
        self.lineage = list(data.get("training", [])[:-1])
        return True

    # ------------------------------------------------------------------ loop
    def train_step(self) -> dict[str, float]:
        """One optimiser step over ``settings.batch`` clips; returns the loss terms, mean over the clips."""
        s = self.settings
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr_at(self.step)
        self.model.train()
        device = self.model.device
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        for i in range(s.batch):
            rng = np.random.default_rng([s.seed, self.step, i])
            torch.manual_seed((s.seed * 1_000_003 + self.step) * 64 + i)
            clip = self.sampler.sample(rng)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=s.autocast(device)):
                terms = rollout(self.model, clip, rng, self.prompts, prior=self.prior)
            if not terms:  # every frame was prompted with its mask (a short clip): nothing to learn from
                continue
            loss = sum(terms.values())
            (loss / s.batch).backward()
            for k, v in {"loss": loss, **terms}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / s.batch
        self.step += 1
        if sums:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s.grad_clip)
            self.optimizer.step()
        return sums or {"loss": 0.0}

    def run(self, progress: bool = True) -> dict[str, float]:
        """Train up to ``settings.steps``; returns the last validation scores (empty if none ran)."""
        s = self.settings
        history: list[dict[str, float]] = []
        scores: dict[str, float] = {}
        bar = tqdm(total=s.steps, initial=self.step, desc="train", disable=not progress, dynamic_ncols=True)
        started = time.time()
        while self.step < s.steps:
            history.append(self.train_step())
            bar.update(1)
            recent = history[-50:]
            bar.set_postfix(loss=f"{np.mean([h['loss'] for h in recent]):.3f}", lr=f"{s.lr_at(self.step):.1e}")
            last = self.step == s.steps
            if self.step % s.checkpoint_every == 0 or last:
                self.save()
                # Clips without a tracked frame or without a clicked one have fewer terms.
                keys = dict.fromkeys(k for h in history for k in h)
                entry = {"step": self.step, "seconds": round(time.time() - started, 1),
                         **{k: float(np.mean([h[k] for h in history if k in h])) for k in keys}}
                if self.validation is not None and ((s.validate_every and self.step % s.validate_every == 0) or last):
                    scores = self.validate()
                    entry.update(scores)
                self._log(entry)
                history.clear()
        bar.close()
        return scores

    def validate(self) -> dict[str, float]:
        """J&F of the current weights on the validation sequences (first-frame masks, official protocol)."""
        from evaluation.benchmark import evaluate_davis

        from ..jobs.dataset_masks import predict_davis

        root, names = self.validation
        self.model.eval()
        out = self.out / "validation" / f"step{self.step:07d}"
        with torch.inference_mode():
            predict_davis(self.model, root, out, names, progress=False)
        report = evaluate_davis(Path(root) / "Annotations" / "480p", out, names, processes=1, progress=False)
        return {f"val_{k}": v for k, v in report.global_scores().items()}

    def _log(self, entry: dict) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")
