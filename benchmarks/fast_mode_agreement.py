"""How far fast mode (bfloat16 autocast) moves the tracker's outputs from exact mode (float32), and why.

For each config: one click on frame 0 of ``../shared/data/videos/bedroom.mp4`` and propagation over
``--frames`` frames, once in each mode, with the same weights (random ones drawn as in
``speed_vs_official.py``, or the trained embedded model for ``vos_small``). Per frame: the relative error
of the logits (``|fast - exact| / |exact|``, Frobenius norms) and the IoU of the masks; then the same with
the decoder's multimask output switched off (one candidate, so no choice between near-tied candidates).

With random weights the decoder's three predicted IoUs are nearly equal, so bfloat16's rounding can pick
another candidate: a discrete jump, not an accumulated numerical error. Comparing the two runs says which
it is: if the error disappears with a single candidate, fast mode's arithmetic is sound and the
difference is the choice.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import speed_vs_official as bench  # noqa: E402  (frames, random weights and clicks as the speed benchmark)


def model_for(config: str, size: int, multimask: bool):
    from vos import load_model
    from vos.model.config import get_config
    from vos.weights.checkpoint import build_model

    switch = {} if multimask else dict(multimask_output_in_sam=False, multimask_output_for_tracking=False)
    if config == "vos_small":
        model = load_model()
        return build_model(model.config.replace(**switch), model.state_dict())
    return build_model(get_config(config).replace(image_size=size, **switch), bench.weights(config, size))


def compare(model, folder: Path) -> dict:
    logits = {}
    for precision in ("float32", "bfloat16"):
        predictor = bench.clicked_predictor(model, folder, 1, precision)
        logits[precision] = [r.logits.float().clone() for r in predictor.propagate(0)]
    rel, iou = [], []
    for exact, fast in zip(logits["float32"], logits["bfloat16"]):
        rel.append(((fast - exact).norm() / exact.norm()).item())
        a, b = exact > 0, fast > 0
        iou.append((a & b).sum().item() / max(1, (a | b).sum().item()))
    return {"relative_error": rel, "iou": iou}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["vos_small", "sam2.1_hiera_tiny", "efficienttam_ti", "edgetam"])
    parser.add_argument("--size", type=int, default=512, help="input size for the random-weight configs")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = bench.frames_dir(tmp, args.frames)
        for config in args.configs:
            for multimask in (True, False):
                row = {"config": config, "multimask": multimask,
                       **compare(model_for(config, args.size, multimask), folder)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    command = " ".join(["python benchmarks/fast_mode_agreement.py", *sys.argv[1:]])
    lines = [
        "# Fast mode (bfloat16) against exact mode (float32): where the difference comes from",
        "",
        f"bedroom.mp4, one click on frame 0, {args.frames} frames, {args.threads} threads, torch {torch.__version__}; "
        f"random weights at {args.size} px except `vos_small` (the trained embedded model). "
        "Relative error: |fast - exact| / |exact| of each frame's logits.",
        "",
        f"Command: `{command}`.",
        "",
        "| config | decoder candidates | logits relative error (median / max over frames) | mask IoU (min / mean) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['config']} | {'3 (multimask)' if r['multimask'] else '1'} | "
                     f"{np.median(r['relative_error']):.3f} / {max(r['relative_error']):.3f} | "
                     f"{min(r['iou']):.3f} / {np.mean(r['iou']):.3f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fast_mode_agreement.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    (args.out / "fast_mode_agreement.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
