"""The ``vos`` command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _info(args: argparse.Namespace) -> int:
    from .jobs.info import describe_model

    for line in describe_model(args.checkpoint, config=args.config, image_size=args.image_size).lines():
        print(line)
    return 0


def _download(args: argparse.Namespace) -> int:
    from .weights.hub import download

    for path in download(args.name):
        print(path)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .jobs.evaluate import evaluate

    run = evaluate(args.dataset, args.root, predictions=args.predictions, checkpoint=args.checkpoint,
                   config=args.config, image_size=args.image_size, images=args.images, split=args.split,
                   out=args.out, device=args.device, precision=args.precision, processes=args.processes,
                   later_objects=args.track_later_objects, compile=args.compile)
    if run is None:  # a torchrun worker: rank 0 reports
        return 0
    for line in run.report.table():
        print(line)
    for f in run.files:
        print(f"wrote {f}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train.clips import ClipSettings
    from .train.job import TrainData, train
    from .train.prior import PriorSimulation
    from .train.rollout import PromptSimulation
    from .train.trainer import TrainSettings

    run = train(
        args.out,
        settings=TrainSettings(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                               checkpoint_every=args.checkpoint_every, validate_every=args.validate_every,
                               warmup=min(200, args.steps // 10), precision=args.precision,
                               trainable=tuple(args.train_only)),
        clips=ClipSettings(num_frames=args.num_frames, composite_frames=args.composite_frames,
                           image_prob=args.image_prob, max_objects=args.max_objects,
                           synthetic_prob=args.synthetic_prob, composite_prob=args.composite_prob),
        prompts=PromptSimulation(mask_prob=args.mask_prob, box_prob=args.box_prob),
        prior=PriorSimulation(own_prob=args.prior_own_prob),
        data=TrainData(davis=args.davis, split=args.split, images=args.images, exclude_images=args.exclude_images,
                       val_root=args.val_root, val_split=args.val_split),
        init=args.init, config=args.config, image_size=args.image_size, init_trunk=args.init_trunk,
        previous_mask=args.previous_mask,
        device=args.device, threads=args.threads, command="vos " + " ".join(args.argv), log=print)
    print(f"wrote {run.model}")
    if run.scores:
        print("validation: " + ", ".join(f"{k} {v:.3f}" for k, v in run.scores.items()))
    return 0


class _PromptAction(argparse.Action):
    """Collects --point/--box/--mask in command-line order, each for the --obj and --frame given before it."""

    def __call__(self, parser, namespace, value, option_string=None):
        items = getattr(namespace, "prompt_items", None) or []
        items.append((self.dest, value, namespace.obj, namespace.frame))
        namespace.prompt_items = items


def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in count:
        raise ValueError(f"{what} {text!r}: expected {' or '.join(map(str, count))} comma-separated numbers")
    return values


def _cli_prompts(args: argparse.Namespace) -> list:
    from .tracking.prompts import FramePrompt, Prompt, read_mask_png, read_prompt_file

    prompts = read_prompt_file(args.prompts) if args.prompts else []
    for kind, value, obj, frame in getattr(args, "prompt_items", None) or []:
        where = f"--{kind} {value!r} (object {obj}, frame {frame})"
        if kind == "point":
            v = _numbers(value, (2, 3), "--point")
            prompt = Prompt.make(points=[v[:2]], labels=[v[2] if len(v) == 3 else 1], where=where)
        elif kind == "box":
            prompt = Prompt.make(box=_numbers(value, (4,), "--box"), where=where)
        else:
            prompt = Prompt.make(mask=read_mask_png(value, obj), where=where)
        prompts.append(FramePrompt(frame, obj, prompt))
    return prompts


def _track(args: argparse.Namespace) -> int:
    if args.manifest:
        return _track_manifest(args)
    if args.input is None:
        raise ValueError("vos track needs a video (a file or a folder of frames), or --manifest FILE.jsonl")
    if args.everything:
        return _track_everything(args)
    from .jobs.track import check_out_dir, check_request, track_settings, track_video

    prompts = _cli_prompts(args)
    out = Path(args.out or Path("vos-out") / Path(args.input).stem)
    # Everything that needs neither the model nor the video is checked before either is loaded.
    check_request(prompts, args.masks)
    check_out_dir(out, args.overwrite)
    model = _tracking_model(args)
    settings = track_settings(args.precision)
    result = track_video(model, args.input, prompts, out, overlay=not args.no_video, masks=args.masks,
                         settings=settings, overwrite=args.overwrite)
    if result.replaced:
        print(f"replaced the previous run's outputs in {out}")
    print(f"tracked {len(set(p.obj_id for p in prompts))} object(s) over {result.frames} frames")
    for path in (result.overlay, result.masks):
        if path is not None:
            print(f"wrote {path}")
    return 0


def _refuse_per_run_options(args: argparse.Namespace, input_given: tuple[str, object], why: str) -> None:
    """A run of many inputs (--manifest, --sources) takes each one's input, prompts and output from its file:
    refuse them on the command line, all named at once."""
    given = [name for name, value in (input_given, ("--out", args.out), ("--prompts", args.prompts),
                                      ("--point/--box/--mask", args.prompt_items), ("--everything", args.everything))
             if value]
    if given:
        raise ValueError(f"{why}: {', '.join(given)} cannot be given with it")


def _track_manifest(args: argparse.Namespace) -> int:
    from .jobs.manifest import run_manifest

    _refuse_per_run_options(args, ("a video", args.input), "--manifest gives each entry its video, prompts and "
                            "output folder")
    run = run_manifest(args.manifest, masks=args.masks, overlay=not args.no_video, overwrite=args.overwrite,
                       checkpoint=args.checkpoint, onnx=args.runtime[1], config=args.config, image_size=args.image_size,
                       precision=args.precision, device=args.device, summary=args.summary,
                       log=lambda line: print(line, flush=True), compile=args.compile)
    if run is None:  # a torchrun worker: rank 0 reports
        return 0
    for line in run.lines():
        print(line)
    print(f"wrote {run.summary}")
    return 1 if run.failed else 0


def _app(args: argparse.Namespace) -> int:
    from .app import run_app

    try:
        run_app(args.input, checkpoint=args.checkpoint, config=args.config, image_size=args.image_size,
                device=args.device, precision=args.precision, port=args.port, compile=args.compile)
    except KeyboardInterrupt:
        print("vos app: stopped")
    return 0


def _live(args: argparse.Namespace) -> int:
    from .jobs.live import live, live_settings

    if args.sources:
        return _live_sources(args)
    if args.source is None:
        raise ValueError("vos live needs a source (a webcam index, a device path, a stream URL or a video file), "
                         "or --sources FILE.json")
    if args.out and Path(args.out).is_dir():
        raise IsADirectoryError(f"--out {args.out} is a folder; 'vos live --out' names the video file to write "
                                "(e.g. live.mp4)")
    prompts = _cli_prompts(args)
    log = lambda message: print(message, flush=True)  # noqa: E731
    report = live(_tracking_model(args), args.source, prompts, args.out, transport=args.transport,
                  max_reconnects=args.max_reconnects, log=log, show=False if args.no_window else None,
                  max_frames=args.max_frames, settings=live_settings(args.precision),
                  everything=_everything_settings(args))
    log("done: " + report.line())
    if report.gaps:
        log("gaps: " + ", ".join(f"{g:.1f} s" for g in report.gaps))
    if args.out:
        log(f"wrote {args.out}")
    return 0


def _live_sources(args: argparse.Namespace) -> int:
    from .jobs.live import live_settings
    from .jobs.live_sources import live_sources, read_sources_file

    _refuse_per_run_options(args, ("a source", args.source), "--sources gives each source its prompts and output")
    entries = read_sources_file(args.sources)  # checked whole before the model is loaded
    log = lambda message: print(message, flush=True)  # noqa: E731
    report = live_sources(_tracking_model(args), entries, transport=args.transport,
                          max_reconnects=args.max_reconnects, log=log, max_frames=args.max_frames,
                          settings=live_settings(args.precision))
    for entry, source in zip(entries, report.sources):
        log("done: " + source.line() + (f"; gaps: {', '.join(f'{g:.1f} s' for g in source.gaps)}" if source.gaps else "")
            + (f"; wrote {entry.out}" if entry.out and source.frames else ""))
    log("done: " + report.line())
    return 1 if report.failed else 0


def _tracking_model(args: argparse.Namespace):
    """The model of the --runtime, --checkpoint, --config, --image-size, --precision, --device and --compile
    options."""
    from .jobs.model import tracking_model

    return tracking_model(args.checkpoint, onnx=args.runtime[1], config=args.config, image_size=args.image_size,
                          precision=args.precision, device=args.device, everything=args.everything,
                          compile=args.compile)


class _RuntimeAction(argparse.Action):
    """``--runtime torch`` or ``--runtime onnx DIR``."""

    def __call__(self, parser, namespace, values, option_string=None):
        if values == ["torch"]:
            namespace.runtime = ("torch", None)
        elif len(values) == 2 and values[0] == "onnx":
            namespace.runtime = ("onnx", values[1])
        else:
            parser.error(f"--runtime takes 'torch' or 'onnx DIR' (a folder written by vos export MODEL --onnx DIR), "
                         f"not {' '.join(values)!r}")


def _export(args: argparse.Namespace) -> int:
    from .jobs.export import export_onnx

    path = export_onnx(args.checkpoint, args.onnx, config=args.config, image_size=args.image_size, opset=args.opset,
                       overwrite=args.overwrite, log=lambda line: print(line, flush=True))
    print(f"wrote {path}; run it with: vos track VIDEO --runtime onnx {args.onnx} ...")
    return 0


def _everything_settings(args: argparse.Namespace):
    """The --everything options as settings, or None without --everything."""
    if not args.everything:
        return None
    from .tracking.everything import EverythingSettings

    return EverythingSettings(every=args.every, points_per_side=args.points_per_side, max_objects=args.max_objects,
                              pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh)


def _track_everything(args: argparse.Namespace) -> int:
    from .jobs.everything import track_everything
    from .jobs.track import check_out_dir, track_settings

    if getattr(args, "prompt_items", None) or args.prompts:
        raise ValueError("--everything finds the objects itself: give no --point, --box, --mask or --prompts with it")
    out = Path(args.out or Path("vos-out") / Path(args.input).stem)
    check_out_dir(out, args.overwrite)
    model = _tracking_model(args)
    frames, found = track_everything(model, args.input, out, settings=_everything_settings(args),
                                     overlay=not args.no_video, masks=args.masks,
                                     tracker_settings=track_settings(args.precision), overwrite=args.overwrite,
                                     log=print)
    print(f"found and tracked {found} object(s) over {frames} frames")
    for path in (out / "overlay.mp4" if not args.no_video else None, out / "masks" if args.masks != "none" else None):
        if path is not None:
            print(f"wrote {path}")
    return 0


def _add_everything_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--everything", action="store_true",
                   help="no prompts: find every object with the automatic mask generator on the first frame, and "
                   "every --every frames add the objects no tracked mask covers (ids stay stable)")
    p.add_argument("--every", type=int, default=15, metavar="N",
                   help="with --everything: frames between searches for new objects (0: first frame only; default 15)")
    p.add_argument("--points-per-side", type=int, default=16,
                   help="with --everything: the generator's grid of clicks per side (default 16)")
    p.add_argument("--max-objects", type=int, default=32, help="with --everything: objects tracked at once (default 32)")
    _add_filter_options(p, "with --everything: ")


def _add_filter_options(p: argparse.ArgumentParser, when: str = "") -> None:
    """The generator's filters whose defaults depend on the model (vos.model.config.GeneratorDefaults)."""
    p.add_argument("--pred-iou-thresh", type=float, default=None,
                   help=f"{when}keep masks whose predicted IoU is above this (default: the model's; 0.8 for SAM 2 "
                   "checkpoints)")
    p.add_argument("--stability-score-thresh", type=float, default=None,
                   help=f"{when}keep masks at least this stable (default: the model's; 0.95 for SAM 2 checkpoints)")


def _segment(args: argparse.Namespace) -> int:
    from .jobs.segment import segment_images

    segment_images(args.input, args.out, checkpoint=args.checkpoint, image_size=args.image_size, device=args.device,
                   png=not args.no_png, log=print, points_per_side=args.points_per_side,
                   pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
                   box_nms_thresh=args.box_nms_thresh, crop_n_layers=args.crop_n_layers,
                   min_mask_region_area=args.min_mask_region_area)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .jobs.demo import demo

    result = demo(args.out, checkpoint=args.checkpoint, synthetic=args.synthetic, seed=args.seed, num_frames=args.frames)
    what = "the generator's exact masks" if args.synthetic else "the clip's human annotation (DAVIS protocol)"
    print(f"clicked object 1 at ({result.click[0]:.0f}, {result.click[1]:.0f}) on frame 0")
    print(f"wrote {result.overlay}")
    print(f"wrote {result.masks}")
    print(f"J&F {result.j_and_f:.3f} (J {result.j:.3f}, F {result.f:.3f}) against {what}")
    return 0


def _add_precision_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["float32", "bfloat16", "float16"], default="float32",
                   help="float32: exact (SAM 2's numbers); bfloat16: fast mode on CPUs with AVX-512 BF16/AMX and on "
                   "GPUs, masks within about 0.98 IoU of exact (other CPUs run it too, slower than float32, and "
                   "say so); float16: fast mode on GPUs")


def _add_compile_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model's per-frame modules (PyTorch runtime): faster frames once compiled; "
                   "the first frames compile (tens of seconds to minutes on a CPU; the time is printed at the end)")


def _add_prompt_options(p: argparse.ArgumentParser, live: bool) -> None:
    """The prompt and model options of 'vos track' and 'vos live' (live prompts are for the first frame)."""
    where = "on the first frame" if live else "in video pixels"
    p.add_argument("--obj", type=int, default=1, help="object id for the prompts that follow (default 1)")
    p.add_argument("--frame", type=int, default=0,
                   help=argparse.SUPPRESS if live else "frame index for the prompts that follow (default 0)")
    p.add_argument("--point", action=_PromptAction, metavar="X,Y[,LABEL]",
                   help=f"a click {where}; LABEL 1 = object (default), 0 = background; repeatable")
    p.add_argument("--box", action=_PromptAction, metavar="X1,Y1,X2,Y2", help=f"a box {where}")
    p.add_argument("--mask", action=_PromptAction, metavar="PNG",
                   help="a mask PNG" + (" for the first frame" if live else "") + ", the size of the video (pixels "
                   "equal to --obj in an index PNG, else non-zero)")
    p.add_argument("--prompts", metavar="JSON", help="prompts from a JSON file" + (" (frame 0 only)" if live else "")
                   + ": [{\"frame\": 0, \"obj_id\": 1, \"points\": [[x, y]], \"labels\": [1], "
                   "\"box\": [x1, y1, x2, y2], \"mask\": \"m.png\"}, ...]")
    p.add_argument("--checkpoint", help="model checkpoint (file or official name); default: the embedded vos model")
    _add_config_option(p)
    p.add_argument("--image-size", type=int, default=None, help="model input size (default: the checkpoint's)")
    _add_precision_option(p)
    _add_compile_option(p)
    p.add_argument("--runtime", nargs="+", action=_RuntimeAction, default=("torch", None), metavar="torch|onnx DIR",
                   help="torch (default): PyTorch; 'onnx DIR': the ONNX graphs written by 'vos export MODEL --onnx DIR', "
                   "on ONNX Runtime's CPU execution provider (float32; needs pip install \"vos[onnx]\")")


def _thread_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def _add_threads_option(p: argparse.ArgumentParser) -> None:
    """--threads, for the commands that run a model: main() applies it (vos.model.device.use_cpu_threads)."""
    p.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                   help="CPU threads for PyTorch and ONNX Runtime. Default: OMP_NUM_THREADS when set, else PyTorch's "
                   "default (the physical cores) less the cores that other processes keep busy at start-up, at least "
                   "1. Threads that share a core with another job stall each other: on 2 busy cores, vos track on 30 "
                   "frames took 221 s at 2 threads and 62 s at 1 (benchmarks/results/threads_under_load.md)")


def _add_config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None,
                   help="the config of a checkpoint that does not store one (e.g. vos_small, sam2.1_hiera_tiny); "
                   "default: the file's own, or the known config its weights fit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vos", description="Video object segmentation and tracking (SAM 2 compatible).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="describe a checkpoint: inferred config, size, parameter count")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint file or official name (e.g. sam2.1_hiera_tiny); default: the embedded model")
    _add_config_option(p)
    p.add_argument("--image-size", type=int, default=None, help="input size to build the model at (default: the config's)")
    p.set_defaults(func=_info)

    p = sub.add_parser("download", help="download an official SAM 2 / 2.1, EdgeTAM or EfficientTAM checkpoint into the cache")
    p.add_argument("name", help="official name (sam2.1_hiera_tiny, sam2_hiera_base_plus, edgetam, efficienttam_s_1, ...) "
                   "or 'all'")
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
                   help="ground truth: a DAVIS root (with Annotations/480p), a YouTube-VOS-style root (JPEGImages, "
                   "Annotations), or an annotation folder of sequences (for SA-V: Annotations_6fps)")
    p.add_argument("--checkpoint", help="the model to run over the dataset (default: the embedded vos model) with the "
                   "official evaluation defaults (masks of the first frame, forward propagation, non-overlapping "
                   "objects); masks go to OUT/masks, and sequences already there are scored, not recomputed")
    _add_config_option(p)
    p.add_argument("--predictions", help="score the masks in this folder instead of running a model")
    p.add_argument("--images", help="SA-V only: the folder of frame folders (JPEGImages_24fps) to run the model on")
    p.add_argument("--image-size", type=int, default=None, help="model input size (default: the checkpoint's)")
    _add_precision_option(p)
    _add_compile_option(p)
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--split", help="ImageSets text file listing the sequences to score (default: all folders)")
    p.add_argument("--out", help="where to write the CSV files and the plot (default: the predictions folder, or vos-eval)")
    p.add_argument("--processes", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--track-later-objects", action="store_true",
                   help="objects first annotated after the first frame (YouTube-VOS, LVOS) are tracked from their "
                   "first annotated frame and are empty before it (the official --track_object_appearing_later_in_video)")
    _add_threads_option(p)
    p.set_defaults(func=_eval)

    p = sub.add_parser(
        "track",
        help="track objects through a video file or a frame folder from clicks, boxes or masks",
        description="Prompts apply to the object (--obj) and frame (--frame) given before them, e.g. "
        "'--obj 1 --point 120,80 --obj 2 --box 10,10,60,90'. Tracking runs forward from the earliest prompted "
        "frame to the end, then backward to frame 0. Writes OUT/overlay.mp4 and OUT/masks/. "
        "With --manifest, many videos in one run (under 'torchrun --nproc-per-node N -m vos track --manifest ...' "
        "shared out over the processes and GPUs): each entry's OUT/done.json is written last, once its outputs are "
        "complete, so running the same command again after a stop or a kill skips the finished entries and redoes "
        "the unfinished ones (--overwrite replaces other outputs in an entry's folder; to redo a finished entry, delete its done.json). The manifest is checked whole before anything runs; an entry that fails (a corrupt "
        "video) is reported in the summary and the others go on. Exit status: 0 when every entry is finished, 1 "
        "when one failed, 2 for a mistake in the manifest or the options.",
    )
    p.add_argument("input", nargs="?", help="a video file or a folder of frames (sorted numerically)")
    p.add_argument("--manifest", metavar="FILE.jsonl",
                   help="track many videos: one JSON object a line, {\"video\": ..., \"prompts\": ..., \"out\": ...} "
                   "(a video file or frame folder, a prompt list in the --prompts format or the path of such a "
                   "file, an output folder; paths relative to the manifest's folder). The other options apply to "
                   "every entry. Resumable: finished entries (OUT/done.json) are skipped")
    p.add_argument("--summary", metavar="JSON",
                   help="with --manifest: where to write the summary of done, skipped and failed entries (default: "
                   "<manifest>.summary.json beside the manifest)")
    _add_prompt_options(p, live=False)
    _add_everything_options(p)
    p.add_argument("--out", help="output folder (default vos-out/<input name>)")
    p.add_argument("--masks", choices=["davis", "sav", "none"], default="davis",
                   help="davis: one palette PNG per frame (object id as index); sav: one binary PNG per object and frame")
    p.add_argument("--no-video", action="store_true", help="do not write the overlay video")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the outputs of an earlier run in the output folder (default: refuse to touch them)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    _add_threads_option(p)
    p.set_defaults(func=_track, prompt_items=[])

    p = sub.add_parser(
        "app",
        help="a page in the browser to click on a video's objects, see their masks at once, track, correct and export",
        description="Serves the page on the loopback address (127.0.0.1) and prints its address. Clicks and boxes on "
        "any frame, several objects, tracking forward then backward with a progress bar, corrections on tracked "
        "frames; the export writes masks, the overlay video and a prompts.json that 'vos track --prompts' replays to "
        "the same masks. Errors (a video that cannot be read, a bad checkpoint) show on the page.",
    )
    p.add_argument("input", metavar="VIDEO", help="a video file or a folder of frames (another can be opened from the page)")
    p.add_argument("--checkpoint", help="model checkpoint (file or official name); default: the embedded vos model")
    _add_config_option(p)
    p.add_argument("--image-size", type=int, default=None, help="model input size (default: the checkpoint's)")
    _add_precision_option(p)
    _add_compile_option(p)
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0: any free port)")
    _add_threads_option(p)
    p.set_defaults(func=_app)

    p = sub.add_parser(
        "export",
        help="export a model to ONNX: one graph per stage and a manifest, to run with --runtime onnx or from any "
        "ONNX Runtime program",
        description="Writes DIR/image_encoder.onnx, memory_attention.onnx (and without_memory.onnx), mask_decoder.onnx "
        "(and mask_as_output.onnx), memory_encoder.onnx and manifest.json (the config, the opset, every graph's "
        "inputs and outputs). Objects, memory frames, object pointers and points are dynamic axes. Each graph is "
        "checked against PyTorch with ONNX Runtime as it is written. Needs pip install \"vos[onnx]\".",
    )
    p.add_argument("checkpoint", nargs="?", default=None, metavar="MODEL",
                   help="checkpoint file or official name (e.g. sam2.1_hiera_tiny); default: the embedded vos model")
    _add_config_option(p)
    p.add_argument("--image-size", type=int, default=None, help="input size to export at (default: the checkpoint's)")
    p.add_argument("--onnx", required=True, metavar="DIR", help="the folder to write the graphs and manifest.json to")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export in DIR")
    _add_threads_option(p)
    p.set_defaults(func=_export)

    p = sub.add_parser(
        "live",
        help="track objects live in a webcam or network stream (RTSP, ...) until stopped",
        description="Prompts (--point/--box/--mask/--prompts, as for 'vos track') apply to the first frame. The "
        "newest frame is always the one tracked: frames the tracker has no time for are dropped and counted. "
        "Lost streams are reconnected with backoff. Prints fps, capture-to-mask latency and dropped frames "
        "every second; Ctrl-C (or q in the window) stops and closes the files.",
    )
    p.add_argument("source", nargs="?", default=None,
                   help="webcam index (0), device path (/dev/video0), stream URL (rtsp://...), or a video file or "
                   "frame folder played at its own frame rate")
    p.add_argument("--sources", metavar="FILE.json",
                   help="several sources in one process, one model: a JSON list of {\"source\": ..., \"prompts\": "
                   "[...] or \"prompts.json\", \"out\": \"video.mp4\"} (paths relative to the file); on a CPU the "
                   "sources are stepped in as many groups as --threads, side by side, each step of a group "
                   "encoding the newest frame of each of its sources in one batch; each source has its own memory, "
                   "reconnection, overlay and report, and one that fails stops alone (exit status 1)")
    _add_prompt_options(p, live=True)
    _add_everything_options(p)
    p.add_argument("--out", help="write the overlay video to this file (e.g. live.mp4)")
    p.add_argument("--no-window", action="store_true", help="never open a window (default: one when a display exists)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="stop after this many tracked frames (of each source, with --sources)")
    p.add_argument("--transport", choices=["tcp", "udp"], default=None,
                   help="RTSP transport (default tcp; with --sources, of every network source)")
    p.add_argument("--max-reconnects", type=int, default=None,
                   help="give up after this many failed reconnections in a row (default: never)")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    _add_threads_option(p)
    p.set_defaults(func=_live, prompt_items=[])

    p = sub.add_parser(
        "segment",
        help="segment everything in an image or a folder of images (the automatic mask generator)",
        description="Writes OUT/<image name>/masks/NNN.png (one binary PNG per mask, best first), masks.json "
        "(SAM's records with COCO RLE segmentations) and overlay.png.",
    )
    p.add_argument("input", help="an image file or a folder of images")
    p.add_argument("--out", default="vos-segment", help="output folder (default vos-segment)")
    p.add_argument("--checkpoint", help="model checkpoint (file or official name); default: the embedded vos model")
    p.add_argument("--image-size", type=int, default=None, help="model input size (default: the checkpoint's)")
    p.add_argument("--points-per-side", type=int, default=32, help="clicks per side of the grid (default 32)")
    _add_filter_options(p)
    p.add_argument("--box-nms-thresh", type=float, default=0.7, help="box IoU above which a mask is a duplicate")
    p.add_argument("--crop-n-layers", type=int, default=0, help="layers of image crops to run again (default 0)")
    p.add_argument("--min-mask-region-area", type=int, default=0,
                   help="remove holes and specks up to this many low-resolution pixels (default 0: off)")
    p.add_argument("--no-png", action="store_true", help="write masks.json and the overlay only")
    p.add_argument("--device", default=None, help="cpu or cuda (default cpu)")
    _add_threads_option(p)
    p.set_defaults(func=_segment)

    p = sub.add_parser(
        "demo",
        help="the main job with no download: a click on a dog in a real clip shipped with vos (DAVIS 2016), "
        "tracking with the embedded model, overlay video, masks and J&F against the clip's annotation",
    )
    p.add_argument("--out", default="vos-demo", help="output folder (default vos-demo)")
    p.add_argument("--synthetic", action="store_true", help="a seeded synthetic video instead of the real clip")
    p.add_argument("--seed", type=int, default=0, help="with --synthetic: seed of the synthetic video")
    p.add_argument("--frames", type=int, default=48, help="with --synthetic: length of the synthetic video")
    p.add_argument("--checkpoint", help="another model instead of the embedded one")
    _add_threads_option(p)
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "train",
        help="train or fine-tune a model on DAVIS-layout folders and synthetic videos (SAM 2's recipe)",
        description="Clips of consecutive frames with up to --max-objects objects; prompts simulated as masks, "
        "clicks or boxes on 1-2 frames plus correction clicks; focal x20 + dice + IoU + object-score losses; "
        "AdamW with a cosine schedule. Checkpoints go to OUT/last.pt (resumed automatically) and OUT/model.pt.",
    )
    p.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, validation masks")
    p.add_argument("--davis", help="DAVIS-layout training root (JPEGImages/480p, Annotations/480p); without it, "
                   "synthetic videos only")
    p.add_argument("--split", help="ImageSets file of training sequences (default: all)")
    p.add_argument("--images", action="append", default=[],
                   help="image set with one object mask per image (ROOT/images/*.jpg, ROOT/masks/*.png), for "
                   "copy-paste composites; repeatable")
    p.add_argument("--exclude-images", help="file of --images names to hold out (one per line): their images, "
                   "with every other object on them, are never trained on")
    p.add_argument("--synthetic-prob", type=float, default=0.5, help="share of clips from the synthetic generator")
    p.add_argument("--composite-prob", type=float, default=0.0,
                   help="share of copy-paste composites: real objects (from --images and --davis) pasted onto real "
                   "frames, moving and occluding each other")
    p.add_argument("--config", default="vos_small", help="model config to train from scratch (default vos_small)")
    p.add_argument("--init", help="start from this checkpoint (official or vos) instead of from scratch")
    p.add_argument("--init-trunk", help="initialise the trunk from hiera-transformer MAE weights (a .pth file)")
    p.add_argument("--image-size", type=int, default=None, help="train at this input size (default: the config's)")
    p.add_argument("--steps", type=int, default=20000, help="total optimiser steps")
    p.add_argument("--batch", type=int, default=1,
                   help="clips per optimiser step (gradients accumulated one clip at a time)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    p.add_argument("--num-frames", type=int, default=8, help="frames per clip")
    p.add_argument("--composite-frames", type=int, default=None,
                   help="frames per copy-paste composite clip (default: --num-frames)")
    p.add_argument("--previous-mask", action=argparse.BooleanOptionalAction, default=None,
                   help="train the model to track with each object's previous mask as a decoder input (MaskTrack's "
                   "prior; stored in the weights' config). Default: as the starting weights or config have it")
    p.add_argument("--prior-own-prob", type=float, default=0.4,
                   help="with --previous-mask: share of tracked frames whose previous mask is the model's own last "
                   "output (the rest: the true mask deformed as a tracker's output would be, or none)")
    p.add_argument("--image-prob", type=float, default=0.0,
                   help="share of steps on a single frame with clicks and boxes (image training mixed into clip training)")
    p.add_argument("--max-objects", type=int, default=3, help="objects per clip")
    p.add_argument("--mask-prob", type=float, default=0.5,
                   help="share of conditioning frames prompted with the ground-truth mask rather than clicks or a box; "
                   "with --num-frames 1 and 0 here, interactive image training as SAM's")
    p.add_argument("--box-prob", type=float, default=0.5, help="share of the other prompts that are boxes rather than clicks")
    p.add_argument("--train-only", nargs="+", default=[], metavar="PREFIX",
                   help="train only the parameters whose names start with these prefixes (e.g. "
                   "sam_mask_decoder.iou_prediction_head); the rest stays frozen")
    p.add_argument("--seed", type=int, default=0, help="seed: the same seed gives the same run")
    p.add_argument("--checkpoint-every", type=int, default=250, help="steps between checkpoints")
    p.add_argument("--val-root", help="DAVIS root to compute J&F on at checkpoints")
    p.add_argument("--val-split", help="ImageSets file of validation sequences (default: all)")
    p.add_argument("--validate-every", type=int, default=0, help="steps between validations (0: at the end)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    _add_threads_option(p)
    p.add_argument("--precision", choices=["auto", "float32", "bfloat16"], default="auto",
                   help="bfloat16 autocast for the forward pass; auto (default): on GPUs and on CPUs with native "
                   "bfloat16 (AVX-512 BF16/AMX), where it is faster; float32 elsewhere")
    p.set_defaults(func=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. Exit status 0 on success, 2 on an error (one line on stderr naming the file, frame,
    object or key; files already written stay complete), 130 when interrupted with Ctrl-C; ``vos track
    --manifest`` and ``vos live --sources``: 1 when an entry or a source failed (the others ran; the summary
    says why)."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in trained weights' lineage
    from streams.redact import remember_secrets

    from .errors import one_line, user_errors

    for arg in args.argv:  # a password given in a URL is hidden in every message, however it is quoted
        remember_secrets(arg)
    try:
        if "threads" in vars(args) and not getattr(args, "predictions", None):  # runs a model (scoring masks does not)
            from .model.device import use_cpu_threads

            args.threads = use_cpu_threads(args.threads).threads
        if not getattr(args, "compile", False):
            return args.func(args)
        from .model.compiled import compile_stats

        try:
            return args.func(args)
        finally:  # what the compiled run paid for compiling, said once
            print(f"vos {args.command} --compile: {compile_stats().describe()}", flush=True)
    except KeyboardInterrupt as exc:  # a run's own summary ("interrupted after N frames; kept ...") when it has one
        print(f"vos {args.command}: {one_line(exc) if str(exc) else 'interrupted'}", file=sys.stderr)
        return 130
    except user_errors() as exc:  # evaluated only when something was raised
        print(f"vos {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
