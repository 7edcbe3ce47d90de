"""A whole benchmark run, as ``vos eval`` does it and as Python calls it: find the dataset's layout, share
the sequences out over ``torchrun`` processes, run a model over them (or take existing masks), score them
with J&F and write the official CSV files and a plot.

Scoring reads only the ground-truth annotations, as the official DAVIS tool does: a root with
``Annotations/`` and ``ImageSets/`` but no frames is scored; running a model needs the frames too. Scoring
alone imports no torch (the model's modules are imported only to run one).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from evaluation import distributed
from evaluation.benchmark import Report, evaluate_davis, evaluate_sav
from evaluation.davis import read_sequence_list
from evaluation.layout import annotations_dir

DATASETS = ("davis", "sav")


@dataclass
class EvalRun:
    """What a run scored and wrote: the scores of every object, the CSV files and the plot."""

    report: Report
    files: list[Path]


def evaluate(
    dataset: str,
    root: str | os.PathLike,
    *,
    predictions: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    config: str | None = None,
    image_size: int | None = None,
    images: str | os.PathLike | None = None,
    split: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    device: str | None = None,
    precision: str = "float32",
    processes: int | None = None,
    later_objects: bool = False,
    progress: bool = True,
    compile: bool = False,
) -> EvalRun | None:
    """Score ``predictions`` (a folder of sequence folders), or run ``checkpoint`` (default: the embedded
    model) with the official evaluation defaults into ``out/masks`` and score that (sequences already there
    are scored, not recomputed). ``root``: a DAVIS root (``Annotations/480p``), a YouTube-VOS-style root
    (``Annotations``) or an annotation folder of sequences (for SA-V: ``Annotations_6fps``, with the frames
    in ``images``; ``compile``: :func:`~vos.weights.load.load_model`'s). ``split``: an ``ImageSets`` file (default: every sequence). Files go to ``out`` (default:
    the predictions folder, or ``vos-eval``). Under ``torchrun`` only rank 0 gets the result; other ranks
    get ``None``."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset kind {dataset!r}; use one of {DATASETS}")
    if dataset == "sav" and predictions is None and images is None:
        raise ValueError("SA-V with a model to run needs --images (images=), the folder of JPEG frame folders "
                         "(JPEGImages_24fps), next to the root (Annotations_6fps)")
    if device is not None:  # a device that is not there fails now, not after the first sequences
        from ..model.device import check_device

        check_device(device)
    root = Path(root)
    out = Path(out or predictions or "vos-eval")
    gt = annotations_dir(root) if dataset == "davis" and (root / "Annotations").is_dir() else root
    names = read_sequence_list(Path(split)) if split else sorted(p.name for p in gt.iterdir() if p.is_dir())
    shard = distributed.setup(device)
    try:
        mine = shard.take(names)
        masks = Path(predictions) if predictions is not None else out / "masks"
        if predictions is None:
            _predict(dataset, root, images, masks, mine, shard, checkpoint, config, image_size, precision, later_objects,
                     compile)
        score = evaluate_davis if dataset == "davis" else evaluate_sav
        gathered = shard.gather(score(gt, masks, mine, processes, progress=progress and shard.is_main).objects)
    finally:
        distributed.teardown()
    if not shard.is_main:
        return None
    order = {name: i for i, name in enumerate(names)}
    report = Report(sorted((o for part in gathered for o in part), key=lambda o: order[o.sequence]))
    if dataset == "davis":
        files = list(report.write_davis_csv(out, Path(split).stem if split else "val"))
    else:
        files = [report.write_sav_csv(out)]
    files.append(report.plot(out / "jf_per_object.png"))
    return EvalRun(report, files)


def _predict(dataset, root, images, masks, names, shard, checkpoint, config, image_size, precision,
             later_objects, compile) -> None:
    """Run the model over this process's share of the sequences, into ``masks``."""
    from ..weights.load import load_model
    from .dataset_masks import davis_settings, predict_davis, predict_sav, sav_settings

    model = load_model(checkpoint, config=config, image_size=image_size, device=shard.device, compile=compile)
    if dataset == "davis":
        predict_davis(model, root, masks, names, davis_settings(precision), progress=shard.is_main,
                      later_objects=later_objects)
    else:
        predict_sav(model, Path(images), root, masks, names, sav_settings(precision), progress=shard.is_main,
                    later_objects=later_objects)
