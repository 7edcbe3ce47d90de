"""Many videos in one run: ``vos track --manifest FILE.jsonl``, sharded over ``torchrun`` processes.

A manifest holds one JSON object a line, ``{"video": ..., "prompts": ..., "out": ...}``: a video file or
frame folder, the prompts (a list in the ``--prompts`` format, or the path of such a file) and the output
folder, paths relative to the manifest's folder. Each entry is tracked by :func:`~vos.jobs.track.track_video`,
as ``vos track`` tracks one video, with one model loaded per process: the outputs are those of ``vos track``
on the entry alone.

Resuming: an entry's ``OUT/done.json`` is written, atomically, once its outputs are closed, and names the
entry (video, prompts, mask format, overlay, model). A run finds the entries whose ``done.json`` names them
and skips them; an entry started and not finished (``OUT/.vos-entry.json`` names it, ``done.json`` does not)
is cleared and redone, so a killed run resumes by running the same command again. Outputs of anything else
in an entry's folder are refused, as ``vos track`` refuses them, unless ``overwrite``.

The whole manifest is checked before anything runs (its JSON, keys, videos and prompts, the output folders),
and every mistake is reported at once with the manifest's file and line. A video that cannot be decoded, a
prompt outside the frame or a full disk fails its entry only: the others go on, and the summary lists it.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evaluation import distributed
from streams.files import atomic_write

from ..errors import one_line, shown, user_errors
from ..tracking.prompts import FramePrompt, PromptError, prompts_from_json, read_prompt_file
from .track import (check_out_dir, check_request, index_ranges, remove_overlay_parts, track_settings,
                    track_video)

KEYS = ("video", "prompts", "out")
DONE = "done.json"  # written last: the entry is finished
STARTED = ".vos-entry.json"  # written first: the outputs beside it are this entry's, perhaps partial
_SHOWN_ERRORS = 20


class ManifestError(ValueError):
    """Mistakes in a manifest, each with its file and line; nothing was run."""


@dataclass(frozen=True)
class Entry:
    """One line of a manifest. ``video`` and ``out`` are resolved against the manifest's folder;
    ``prompts`` is the inline JSON value or the resolved path of a prompt file; ``identity`` is what
    ``done.json`` records to recognise this entry's outputs."""

    manifest: Path
    line: int
    video: Path
    prompts: Any
    out: Path
    identity: dict

    @property
    def where(self) -> str:
        return f"{self.manifest}:{self.line}"

    def read_prompts(self) -> list[FramePrompt]:
        if isinstance(self.prompts, Path):
            return read_prompt_file(self.prompts)
        return prompts_from_json(self.prompts, f"{self.where} prompts", self.manifest.parent)


@dataclass
class EntryResult:
    """What became of an entry: ``status`` is ``done`` (run now), ``skipped`` (finished by an earlier run)
    or ``failed`` (``reason`` says why; the other entries went on)."""

    line: int
    video: str
    out: str
    status: str
    reason: str | None = None
    frames: int | None = None
    seconds: float | None = None
    process: int | None = None


@dataclass
class ManifestRun:
    """A whole run: every entry's result in manifest order, and where the summary was written."""

    manifest: Path
    results: list[EntryResult]
    summary: Path
    processes: int
    seconds: float

    def having(self, status: str) -> list[EntryResult]:
        return [r for r in self.results if r.status == status]

    @property
    def failed(self) -> bool:
        return bool(self.having("failed"))

    def lines(self) -> list[str]:
        """The summary as printed: counts, the lines done and skipped, each failure with its reason."""
        done, skipped, failed = (self.having(s) for s in ("done", "skipped", "failed"))
        out = [f"{self.manifest}: {len(self.results)} entries: {len(done)} done, {len(skipped)} skipped (finished "
               f"before), {len(failed)} failed; {self.seconds:.1f} s on {self.processes} process(es)"]
        for name, results in (("done", done), ("skipped", skipped)):
            if results:
                out.append(f"{name}: lines {index_ranges([r.line for r in results])}")
        out += [f"failed: line {r.line} ({r.video} -> {r.out}): {r.reason}" for r in failed]
        return out

    def to_json(self) -> dict:
        counts = {s: len(self.having(s)) for s in ("done", "skipped", "failed")}
        return {"manifest": str(self.manifest), "processes": self.processes, "seconds": round(self.seconds, 3),
                **counts, "entries": [asdict(r) for r in self.results]}


def read_manifest(path: str | os.PathLike, masks: str = "davis", options: dict | None = None) -> list[Entry]:
    """Every entry of the manifest at ``path``, checked: the JSON of each line, its keys, that the video
    exists, the prompts (read and checked as ``vos track`` checks them, for the ``masks`` format), and that
    no two entries share an output folder. ``options``: what else ``done.json`` records of the run (the
    mask format, the overlay, the model). Raises :class:`ManifestError` listing every mistake by line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    entries, errors, outs = [], [], {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = _entry(path, number, line, masks, options or {})
        except ManifestError as exc:
            errors.append(str(exc))
            continue
        first = outs.setdefault(entry.out.resolve(), number)
        if first != number:
            errors.append(f"{entry.where}: out {entry.out} is line {first}'s output folder too; each entry needs "
                          "its own")
            continue
        entries.append(entry)
    if not entries and not errors:
        errors.append(f"{path}: no entries (one JSON object a line: "
                      '{"video": ..., "prompts": ..., "out": ...})')
    _raise_all(errors)
    return entries


def _entry(manifest: Path, number: int, line: str, masks: str, options: dict) -> Entry:
    where = f"{manifest}:{number}"
    try:
        value = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"{where}: not valid JSON: "
                            f"{'nested too deeply' if isinstance(exc, RecursionError) else exc}") from None
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected an object with {', '.join(KEYS)}, got {shown(value)}")
    missing = [k for k in KEYS if k not in value]
    unknown = sorted(set(value) - set(KEYS))
    if missing or unknown:
        raise ManifestError(f"{where}: " + "; ".join(
            ([f"missing {', '.join(missing)}"] if missing else []) +
            ([f"unknown keys {unknown} (allowed: {list(KEYS)})"] if unknown else [])))
    for key in ("video", "out"):
        if not isinstance(value[key], str) or not value[key]:
            raise ManifestError(f"{where}: {key} must be a path, got {shown(value[key])}")
    base = manifest.parent
    video = base / value["video"]
    if not video.exists():
        raise ManifestError(f"{where}: video {video} does not exist (paths are relative to the manifest's folder)")
    spec = value["prompts"]
    if isinstance(spec, str):
        prompts, identity = base / spec, {"file": spec}
        if prompts.is_file():
            identity["sha256"] = hashlib.sha256(prompts.read_bytes()).hexdigest()
    else:
        prompts, identity = spec, {"inline": spec}
    entry = Entry(manifest, number, video, prompts, base / value["out"],
                  {"video": value["video"], "prompts": identity, "masks": masks, **options})
    try:
        check_request(entry.read_prompts(), masks)
    except PromptError as exc:
        text = str(exc)
        raise ManifestError(text if text.startswith(where) else f"{where}: {text}") from None
    except OSError as exc:  # a prompt file or mask PNG that cannot be read
        raise ManifestError(f"{where}: {one_line(exc)}") from None
    return entry


def _raise_all(errors: list[str]) -> None:
    if errors:
        more = len(errors) - _SHOWN_ERRORS
        raise ManifestError(f"{len(errors)} mistake(s), nothing was run: " + "; ".join(errors[:_SHOWN_ERRORS])
                            + (f"; and {more} more" if more > 0 else ""))


def _read_marker(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_bytes())
    except (OSError, ValueError):  # absent, or torn by hand: not a marker of this entry
        return None
    return value if isinstance(value, dict) else None


def _write_marker(path: Path, value: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(value, indent=1) + "\n"))


def plan(entries: list[Entry], overwrite: bool = False) -> tuple[list[Entry], list[Entry]]:
    """``(to run, finished)``: the entries whose ``done.json`` names them are finished. The others are run,
    after their folder's outputs are removed when these are an unfinished run of the same entry, or
    ``overwrite``; outputs of anything else are a :class:`ManifestError` (every such entry listed)."""
    todo, finished, errors = [], [], []
    for entry in entries:
        done = _read_marker(entry.out / DONE)
        if done is not None and done.get("entry") == entry.identity:
            finished.append(entry)
            continue
        started = _read_marker(entry.out / STARTED)
        ours = started is not None and started.get("entry") == entry.identity
        if done is not None and not overwrite:
            other = done.get("entry") if isinstance(done.get("entry"), dict) else {}
            differ = [k for k in entry.identity if other.get(k) != entry.identity[k]]
            errors.append(f"{entry.where}: {entry.out} holds the finished outputs of another entry (its {DONE} "
                          f"differs in {', '.join(differ)}); choose another out, or replace them (--overwrite)")
            continue
        try:
            check_out_dir(entry.out, overwrite or ours)
        except (FileExistsError, NotADirectoryError) as exc:
            errors.append(f"{entry.where}: {exc}")
            continue
        todo.append(entry)
    _raise_all(errors)
    return todo, finished


def run_manifest(
    manifest: str | os.PathLike,
    *,
    masks: str = "davis",
    overlay: bool = True,
    overwrite: bool = False,
    checkpoint: str | os.PathLike | None = None,
    onnx: str | os.PathLike | None = None,
    config: str | None = None,
    image_size: int | None = None,
    precision: str = "float32",
    device: str | None = None,
    summary: str | os.PathLike | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    compile: bool = False,
) -> ManifestRun | None:
    """Track every entry of ``manifest`` (see the module's description) with the options of ``vos track``
    (``masks``, ``overlay``, ``overwrite``, the model's). Under ``torchrun`` the entries still to run are
    shared out over the processes, each loading the model once; the results are gathered on rank 0, which
    writes the summary (``summary``, default ``<manifest>.summary.json`` beside the manifest) and gets the
    :class:`ManifestRun`; other ranks get ``None``. Entries that fail are in the summary; a mistake in the
    manifest is a :class:`ManifestError` before anything runs."""
    from .model import tracking_model

    started = time.monotonic()
    manifest = Path(manifest)
    model_options = {"checkpoint": None if checkpoint is None else str(checkpoint),
                     "onnx": None if onnx is None else str(onnx), "config": config, "image_size": image_size,
                     "precision": precision}
    entries = read_manifest(manifest, masks, {"overlay": overlay, "model": model_options})
    summary_path = Path(summary) if summary is not None else manifest.with_name(manifest.stem + ".summary.json")
    if not summary_path.parent.is_dir():  # found now, not once every entry has run
        raise FileNotFoundError(f"the folder of the summary {summary_path} does not exist")
    todo, finished = plan(entries, overwrite)
    shard = distributed.setup(device)
    try:
        shard.barrier()  # every process planned before any wrote: they share out the same list
        mine = shard.take(todo)
        tag = f"[process {shard.rank + 1}/{shard.world_size}] " if shard.world_size > 1 else ""
        if shard.is_main and finished:
            log(f"{len(finished)} of {len(entries)} entries finished before (their {DONE} names them): skipped")
        results = []
        if mine:
            model = tracking_model(checkpoint, onnx=onnx, config=config, image_size=image_size, precision=precision,
                                   device=shard.device, compile=compile)
            settings = track_settings(precision)
            bar = progress and shard.world_size == 1
            for i, entry in enumerate(mine, 1):
                log(f"{tag}entry {i} of {len(mine)}: line {entry.line}, {entry.video} -> {entry.out}")
                try:
                    result = _run_entry(entry, model, settings, masks, overlay, bar, shard.rank)
                except KeyboardInterrupt as exc:
                    raise KeyboardInterrupt(
                        f"{entry.where} ({entry.video}): {one_line(exc) if str(exc) else 'interrupted'}; "
                        f"{sum(r.status == 'done' for r in results)} entries finished in this run: run the same "
                        "command again to resume (finished entries are skipped, this one is redone)") from None
                log(f"{tag}  {_described(result)}")
                results.append(result)
        gathered = shard.gather(results)
    finally:
        distributed.teardown()
    if not shard.is_main:
        return None
    results = [_result(e, "skipped") for e in finished] + [r for part in gathered for r in part]
    run = ManifestRun(manifest, sorted(results, key=lambda r: r.line), summary_path, shard.world_size,
                      time.monotonic() - started)
    atomic_write(summary_path, lambda tmp: tmp.write_text(json.dumps(run.to_json(), indent=1) + "\n"))
    return run


def _result(entry: Entry, status: str, **fields) -> EntryResult:
    return EntryResult(entry.line, str(entry.video), str(entry.out), status, **fields)


def _described(result: EntryResult) -> str:
    if result.status == "done":
        return f"done: {result.frames} frames in {result.seconds:.1f} s"
    return f"failed: {result.reason}"


def _run_entry(entry: Entry, model, settings, masks: str, overlay: bool, progress: bool, rank: int) -> EntryResult:
    """Track one entry as ``vos track`` would, between the markers: ``STARTED`` first, ``DONE`` once every
    output is closed. A failure is returned, not raised: the run goes on with the next entry."""
    started = time.monotonic()
    try:
        prompts = entry.read_prompts()
        entry.out.mkdir(parents=True, exist_ok=True)
        _write_marker(entry.out / STARTED, {"entry": entry.identity})
        (entry.out / DONE).unlink(missing_ok=True)  # replaced (--overwrite): no longer this folder's outputs
        remove_overlay_parts(entry.out / "overlay.mp4")  # what a killed run's backward pass left
        outputs = track_video(model, entry.video, prompts, entry.out, overlay=overlay, masks=masks,
                              settings=settings, progress=progress, overwrite=True)
        seconds = time.monotonic() - started
        _write_marker(entry.out / DONE, {
            "entry": entry.identity, "manifest": str(entry.manifest), "line": entry.line, "frames": outputs.frames,
            "seconds": round(seconds, 3), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        (entry.out / STARTED).unlink(missing_ok=True)
    except Exception as exc:  # noqa: BLE001 - one entry's failure, whatever it is, must not stop the others
        if isinstance(exc, user_errors()):
            reason = one_line(exc)
        else:  # a bug in vos: its traceback is kept for the report
            traceback.print_exc(file=sys.stderr)
            reason = f"{type(exc).__name__}: {exc} (a bug in vos; its traceback is above)"
        return _result(entry, "failed", reason=reason, seconds=round(time.monotonic() - started, 3), process=rank)
    return _result(entry, "done", frames=outputs.frames, seconds=round(seconds, 3), process=rank)
