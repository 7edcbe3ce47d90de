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
