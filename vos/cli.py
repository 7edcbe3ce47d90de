"""The ``vos`` command line."""
from __future__ import annotations

import argparse
import sys


def _info(args: argparse.Namespace) -> int:
    from . import load_model

    model = load_model(args.checkpoint, image_size=args.image_size)
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    print(f"config:      {cfg.name} (SAM {cfg.version})")
    print(f"image size:  {cfg.image_size}")
    print(f"trunk:       embed_dim={cfg.trunk.embed_dim} heads={cfg.trunk.num_heads} stages={cfg.trunk.stages}")
    print(f"parameters:  {params:,}")
    return 0


def _download(args: argparse.Namespace) -> int:
    from .hub import OFFICIAL_CHECKPOINTS, checkpoint_path

    names = sorted(OFFICIAL_CHECKPOINTS) if args.name == "all" else [args.name]
    for name in names:
        print(checkpoint_path(name))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evaluation import distributed
    from evaluation.benchmark import Report, evaluate_davis, evaluate_sav
    from evaluation.davis import read_sequence_list

    if args.predictions is None and args.checkpoint is None:
        raise ValueError("give --checkpoint to run a model, or --predictions to score existing masks")
    if args.predictions is None and args.dataset != "davis":
        raise ValueError("running a model is implemented for --dataset davis; score SA-V masks with --predictions")
    root = Path(args.root)
    out = Path(args.out or args.predictions or "vos-eval")
    if args.dataset == "davis":
        gt = root / "Annotations" / "480p" if (root / "Annotations" / "480p").is_dir() else root
    else:
        gt = root
    names = read_sequence_list(Path(args.split)) if args.split else sorted(p.name for p in gt.iterdir() if p.is_dir())
    shard = distributed.setup(args.device)
    try:
        mine = shard.take(names)
        predictions = Path(args.predictions) if args.predictions else out / "masks"
        if args.predictions is None:
            from evaluation.inference import predict_davis

            from . import load_model

            model = load_model(args.checkpoint, image_size=args.image_size, device=shard.device)
            predict_davis(model, root, predictions, mine, progress=shard.is_main)
        score = evaluate_davis if args.dataset == "davis" else evaluate_sav
        objects = score(gt, predictions, mine, args.processes, progress=shard.is_main).objects
        gathered = shard.gather(objects)
    finally:
        distributed.teardown()
    if not shard.is_main:
        return 0
    order = {name: i for i, name in enumerate(names)}
    report = Report(sorted((o for part in gathered for o in part), key=lambda o: order[o.sequence]))
    if args.dataset == "davis":
        files = list(report.write_davis_csv(out, Path(args.split).stem if args.split else "val"))
    else:
        files = [report.write_sav_csv(out)]
    files.append(report.plot(out / "jf_per_object.png"))
    print(f"{'object':<28}{'J&F':>8}{'J':>8}{'F':>8}")
    for obj in report.objects:
        s = obj.summary()
        print(f"{obj.name:<28}{s['J&F-Mean']:>8.3f}{s['J-Mean']:>8.3f}{s['F-Mean']:>8.3f}")
    g = report.global_scores()
    print(f"{'GLOBAL':<28}{g['J&F-Mean']:>8.3f}{g['J-Mean']:>8.3f}{g['F-Mean']:>8.3f}")
    for f in files:
        print(f"wrote {f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vos", description="Video object segmentation and tracking (SAM 2 compatible).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="describe a checkpoint: inferred config, size, parameter count")
    p.add_argument("checkpoint", help="checkpoint file or official name (e.g. sam2.1_hiera_tiny)")
    p.add_argument("--image-size", type=int, default=None, help="input size to build the model at (default: the config's)")
    p.set_defaults(func=_info)

    p = sub.add_parser("download", help="download an official SAM 2 / 2.1 checkpoint into the cache")
    p.add_argument("name", help="official name (sam2.1_hiera_tiny, sam2_hiera_base_plus, ...) or 'all'")
    p.set_defaults(func=_download)

    p = sub.add_parser(
        "eval",
        help="run a model over DAVIS and score it, or score existing masks, with J&F as the official tools do",
        description="Under torchrun (torchrun --nproc_per_node N -m vos eval ...) sequences are shared out over the "
        "processes and GPUs, and rank 0 gathers the scores.",
    )
    p.add_argument("--dataset", choices=["davis", "sav"], required=True,
                   help="davis: palette PNG per frame, first/last frame not scored; sav: binary PNG per object")
    p.add_argument("--root", required=True,
                   help="ground truth: a DAVIS root (with Annotations/480p) or an annotation folder of sequences")
    p.add_argument("--checkpoint", help="run this model over the dataset first (official evaluation defaults: masks "
                   "of the first frame, forward propagation, non-overlapping objects); masks go to OUT/masks, and "
                   "sequences already there are scored, not recomputed")
    p.add_argument("--predictions", help="score the masks in this folder instead of running a model")
    p.add_argument("--image-size", type=int, default=None, help="model input size (default: the checkpoint's)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--split", help="ImageSets text file listing the sequences to score (default: all folders)")
    p.add_argument("--out", help="where to write the CSV files and the plot (default: the predictions folder, or vos-eval)")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: all cores)")
    p.set_defaults(func=_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .checkpoint import CheckpointError
    from .hub import DownloadError

    try:
        return args.func(args)
    except (FileNotFoundError, CheckpointError, DownloadError, KeyError, ValueError) as exc:
        print(f"vos {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
