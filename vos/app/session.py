"""One ``vos app`` session: a video, a model, the user's prompts in the order given, the masks shown on each
frame, and at most one job (tracking or an export) at a time.

What the page shows is what ``vos track`` computes for the prompts: a click on an object and frame shows
the mask that object gets there when the prompts are replayed (:meth:`VideoPredictor.add_prompts` on that
object and frame alone, which is all its mask there depends on); tracking replays every prompt and
propagates as ``vos track`` does, with its settings (:func:`vos.jobs.track.track_settings`). Clicks on a frame
an object was tracked on start from the tracked mask (recorded as a mask prompt, which the clicks refine),
so that they correct it; the next tracking run takes the corrected frame as a prompted one.
"""
from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from streams import VideoFile, open_video
from streams.masks import davis_palette

from ..errors import UnknownNameError, shown
from ..jobs.track import (
    TrackInterrupted,
    TrackOutputs,
    check_out_dir,
    check_request,
    track_settings,
    track_video,
)
from ..model.sam2 import SAM2Model
from ..tracking.prompts import (
    MAX_PALETTE_ID,
    FramePrompt,
    Prompt,
    PromptError,
    check_frame_index,
    write_prompt_file,
)
from ..tracking.results import FrameResult
from ..tracking.video_predictor import VideoPredictor
from .masks import MaskStore

KEEP_ENCODED = 8  # frames whose features stay cached: those the user is clicking on and around


class BusyError(RuntimeError):
    """A change asked for while a job (tracking or an export) runs."""


def colour(obj_id: int) -> tuple[int, int, int]:
    """An object's colour: its id's in the DAVIS palette, as in the mask PNGs and the overlay video."""
    rgb = davis_palette()
    return tuple(rgb[3 * obj_id : 3 * obj_id + 3])


@dataclass
class Job:
    """Tracking or an export running in its own thread: ``done`` of ``total`` frames; ``state`` is
    ``running``, ``done``, ``cancelled`` or ``failed``, with a message for the page."""

    kind: str
    total: int
    done: int = 0
    state: str = "running"
    message: str = ""
    started: float = field(default_factory=time.time)
    stop: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict:
        return {"kind": self.kind, "total": self.total, "done": self.done, "state": self.state,
                "message": self.message, "seconds": round(time.time() - self.started, 1)}


@dataclass
class Candidates:
    """The masks the decoder offered for the latest prompt of ``obj_id`` on ``frame``, best first as chosen."""

    frame: int
    obj_id: int
    items: list[tuple[np.ndarray, float]]
    picked: int | None = None  # the user's choice, when not the decoder's

    @property
    def chosen(self) -> int:
        """The candidate shown: the user's pick, else the decoder's (the highest predicted IoU)."""
        return self.picked if self.picked is not None else int(np.argmax([iou for _, iou in self.items]))


class Session:
    """The state of the page for one video and model; every method is safe to call from any thread."""

    def __init__(self, model: SAM2Model, video: str | Path, precision: str = "float32", model_options: str = "") -> None:
        self.model = model
        self.model_options = model_options  # how vos track is told of this model, for the replay command
        self.video = Path(video)
        self.settings = track_settings(precision)
        self.source = open_video(self.video)
        try:
            # A second decoder for the page, so that scrubbing never waits for a job's tracking (and vice versa).
            # A small cache: the page reads one frame at a time (the tracking decoder keeps its larger one
            # for reading backwards).
            self.display = VideoFile(self.video, cache_frames=4) if self.video.is_file() else open_video(self.video)
        except BaseException:
            self.source.close()
            raise
        self.predictor = VideoPredictor(model, self.source, self.settings, keep_encoded=KEEP_ENCODED)
        self.num_frames = len(self.source)
        self.size: tuple[int, int] = tuple(self.source.size)
        self.fps = self.source.fps
        self.prompts: list[FramePrompt] = []
        self.objects: list[int] = []
        self.selected: int | None = None
        self.masks = MaskStore(self.size)
        self.tracked: dict[int, bool] = {}  # frame -> tracked with the current prompts (False: stale)
        self.candidates: Candidates | None = None
        self.job: Job | None = None
        self.version = 0  # changes with every change of what the page shows
        self._lock = threading.RLock()
        self._display_lock = threading.Lock()

    # ------------------------------------------------------------------ reading
    def frame_image(self, index: int) -> np.ndarray:
        """``(H, W, 3)`` RGB of a frame, decoded now."""
        self._check_frame(index)
        with self._display_lock:
            return self.display[index].image

    def frame_masks(self, index: int) -> dict[int, np.ndarray]:
        """Every object's mask shown on a frame (objects without one there are left out)."""
        self._check_frame(index)
        with self._lock:
            return self.masks.frame(index)

    def state(self) -> dict:
        """Everything the page draws, as JSON-ready values."""
        with self._lock:
            h, w = self.size
            candidates = None
            if self.candidates is not None:
                c = self.candidates
                candidates = {"frame": c.frame, "obj_id": c.obj_id, "chosen": c.chosen,
                              "ious": [round(iou, 3) for _, iou in c.items]}
            return {
                "video": {"path": str(self.video), "frames": self.num_frames, "width": w, "height": h,
                          "fps": self.fps},
                "objects": [{"id": i, "colour": "#%02x%02x%02x" % colour(i),
                             "prompts": sum(p.obj_id == i for p in self.prompts)} for i in self.objects],
                "selected": self.selected,
                "prompts": [_describe(p) for p in self.prompts],
                "tracked": _runs(self.tracked, True),
                "stale": _runs(self.tracked, False),
                "with_masks": self.masks.frames(),
                "candidates": candidates,
                "job": None if self.job is None else self.job.describe(),
                "version": self.version,
            }

    # ------------------------------------------------------------------ objects
    def add_object(self) -> int:
        """A new object, selected: the next clicks go to it. Ids run from 1 (palette masks hold 1-255)."""
        with self._lock:
            obj_id = max(self.objects, default=0) + 1
            if obj_id > MAX_PALETTE_ID:
                raise PromptError(f"at most {MAX_PALETTE_ID} objects: palette masks hold ids 1-{MAX_PALETTE_ID}")
            self.objects.append(obj_id)
            self.selected = obj_id
            self._changed()
            return obj_id

    def select(self, obj_id: int) -> None:
        with self._lock:
            self._check_object(obj_id)
            self.selected = obj_id
            self._changed()

    def remove_object(self, obj_id: int) -> None:
        """Forget an object: its prompts and masks go; the others keep theirs."""
        with self._lock:
            self._check_idle()
            self._check_object(obj_id)
            self.objects.remove(obj_id)
            self.prompts = [p for p in self.prompts if p.obj_id != obj_id]
            self.masks.discard_object(obj_id)
            if self.selected == obj_id:
                self.selected = self.objects[-1] if self.objects else None
            if self.candidates is not None and self.candidates.obj_id == obj_id:
                self.candidates = None
            self._prompts_changed()

    # ------------------------------------------------------------------ prompts
    def click(self, frame: int, obj_id: int, x: float, y: float, positive: bool = True) -> None:
        """A click on ``(x, y)`` in video pixels: on the object (``positive``) or on the background."""
        where = f"object {obj_id}, frame {frame}"
        self._prompt(frame, obj_id, Prompt.make(points=[[x, y]], labels=[1 if positive else 0], where=where))

    def box(self, frame: int, obj_id: int, box: list[float]) -> None:
        """A box ``(x1, y1, x2, y2)`` in video pixels around the object."""
        self._prompt(frame, obj_id, Prompt.make(box=box, where=f"object {obj_id}, frame {frame}"))

    def _prompt(self, frame: int, obj_id: int, prompt: Prompt) -> None:
        with self._lock:
            self._check_idle()
            self._check_frame(frame)
            self._check_object(obj_id)
            before = self._entries(frame, obj_id)
            new = []
            tracked = self.masks.get(frame, obj_id)
            if not before and tracked is not None and tracked.any():  # a correction starts from the tracked mask
                new.append(FramePrompt(frame, obj_id, Prompt.make(mask=tracked)))
            new.append(FramePrompt(frame, obj_id, prompt))
            self._show_prompt(frame, obj_id, before + new)  # raises, changing nothing, on a bad prompt
            self.prompts += new
            self._prompts_changed()

    def pick(self, index: int) -> None:
        """Use candidate ``index`` of the latest prompt's masks instead of the one the decoder chose: the
        object's prompts on that frame become that mask."""
        with self._lock:
            self._check_idle()
            c = self.candidates
            if c is None:
                raise PromptError("no mask choice to make: the latest prompt gave a single mask")
            if not 0 <= index < len(c.items):
                raise PromptError(f"mask choice {index} does not exist: there are {len(c.items)}")
            entry = FramePrompt(c.frame, c.obj_id, Prompt.make(mask=c.items[index][0]))
            self._show_prompt(c.frame, c.obj_id, [entry])
            self.candidates = Candidates(c.frame, c.obj_id, c.items, index)  # the choice stays on offer
            key = (c.frame, c.obj_id)
            first = next(i for i, p in enumerate(self.prompts) if (p.frame, p.obj_id) == key)
            rest = [p for p in self.prompts if (p.frame, p.obj_id) != key]
            self.prompts = rest[:first] + [entry] + rest[first:]
            self._prompts_changed()

    def clear(self, frame: int, obj_id: int) -> None:
        """Remove the object's prompts on a frame (and the mask they made)."""
        with self._lock:
            self._check_idle()
            self._check_frame(frame)
            self._check_object(obj_id)
            self.prompts = [p for p in self.prompts if (p.frame, p.obj_id) != (frame, obj_id)]
            self.masks.discard(frame, obj_id)
            if self.candidates is not None and (self.candidates.frame, self.candidates.obj_id) == (frame, obj_id):
                self.candidates = None
            self._prompts_changed()

    def _entries(self, frame: int, obj_id: int) -> list[FramePrompt]:
        return [p for p in self.prompts if (p.frame, p.obj_id) == (frame, obj_id)]

    def _show_prompt(self, frame: int, obj_id: int, entries: list[FramePrompt]) -> None:
        """The object's mask on the frame from its prompts there, as replaying them gives it."""
        predictor = self.predictor
        predictor.reset()
        try:
            predictor.add_prompts(entries)
            mask = predictor.result(frame).mask(obj_id)
            items = predictor.candidates(frame, obj_id)
        finally:
            predictor.reset()
        self.masks.put(frame, obj_id, mask)
        self.candidates = Candidates(frame, obj_id, items) if items else None

    def warm_up(self) -> None:
        """Run the model once on frame 0, so that the user's first click is as fast as the next ones (torch's
        first pass through its kernels is several times slower)."""
        with self._lock:
            if self.prompts or (self.job is not None and self.job.state == "running"):
                return
            h, w = self.size
            try:
                self._show_prompt(0, 0, [FramePrompt(0, 0, Prompt.make(points=[[w / 2, h / 2]]))])
            except Exception:  # noqa: BLE001 - the user's click will report whatever this met
                pass
            finally:
                self.masks.clear()
                self.candidates = None

    # ------------------------------------------------------------------ jobs
    def start_track(self) -> Job:
        """Track every prompted object forward from the earliest prompted frame to the end, then backward to
        frame 0, in a thread; the masks replace the frames' as they come."""
        with self._lock:
            self._check_idle()
            if not self.prompts:
                raise PromptError("nothing to track: click on an object first")
            job = self.job = Job("track", self.num_frames)
        threading.Thread(target=self._run, args=(job, lambda: self.run_track(job)), daemon=True).start()
        return job

    def run_track(self, job: Job) -> None:
        """The tracking itself (in the calling thread); stops after the current frame once ``job.stop`` is set."""
        with self._lock:  # prompts cannot change while a job runs
            prompts = list(self.prompts)
        predictor = self.predictor
        try:
            predictor.reset()
            predictor.add_prompts(prompts)
            for result in predictor.propagate_both(min(p.frame for p in prompts)):
                self._store(result)
                job.done += 1
                if job.stop.is_set():
                    break
        finally:
            predictor.reset()
        with self._lock:
            if job.stop.is_set() and job.done < job.total:
                job.state, job.message = "cancelled", f"cancelled: {job.done} of {job.total} frames tracked, kept"
            else:
                job.state, job.message = "done", f"tracked {job.total} frames"

    def _store(self, result: FrameResult) -> None:
        with self._lock:
            self.masks.put_frame(result.frame_idx, dict(zip(result.obj_ids, result.masks)))
            self.tracked[result.frame_idx] = True
            self._changed()

    def start_export(self, folder: str | Path, masks: str = "davis", overlay: bool = True, overwrite: bool = False) -> Job:
        """Write ``folder/prompts.json`` (what ``vos track --prompts`` replays), then run ``vos track``'s job
        on the video with those prompts into ``folder`` (``masks/``, ``overlay.mp4``), in a thread."""
        if not str(folder).strip():
            raise ValueError("no export folder given: enter the folder to write the masks and prompts.json to")
        out = Path(folder).expanduser()
        with self._lock:
            self._check_idle()
            prompts = list(self.prompts)
            check_request(prompts, masks)
            check_out_dir(out, overwrite)
            if not overwrite and (out / "prompts.json").exists():
                raise FileExistsError(f"{out / 'prompts.json'} exists (an earlier export); nothing was changed: "
                                      "choose another folder, or tick overwrite")
            job = self.job = Job("export", self.num_frames)
        threading.Thread(target=self._run, args=(job, lambda: self.run_export(prompts, out, masks, overlay, overwrite, job)),
                         daemon=True).start()
        return job

    def run_export(self, prompts: list[FramePrompt], out: Path, masks: str, overlay: bool, overwrite: bool, job: Job) -> TrackOutputs:
        out.mkdir(parents=True, exist_ok=True)
        prompt_file = write_prompt_file(out / "prompts.json", prompts)

        def count(result: FrameResult) -> None:
            job.done += 1

        try:
            outputs = track_video(self.model, self.video, prompts, out, overlay=overlay, masks=masks,
                                  settings=self.settings, progress=False, overwrite=overwrite, on_frame=count, stop=job.stop)
        except TrackInterrupted as exc:
            job.state, job.message = "cancelled", f"export cancelled: {exc}; {prompt_file} written"
            return exc.kept
        written = [str(p) for p in (outputs.masks, outputs.overlay, prompt_file) if p is not None]
        job.state, job.message = "done", "wrote " + ", ".join(written) + f"; replay: {self.replay_command(prompt_file)}"
        return outputs

    def replay_command(self, prompt_file: Path) -> str:
        """The ``vos track`` command that writes the same masks."""
        model = f" {self.model_options}" if self.model_options else ""
        return f"vos track {shlex.quote(str(self.video))} --prompts {shlex.quote(str(prompt_file))}{model} " \
               f"--precision {self.settings.precision}"

    def cancel(self) -> None:
        """Stop the running job after its current frame; what it did is kept."""
        with self._lock:
            if self.job is not None and self.job.state == "running":
                self.job.stop.set()

    def _run(self, job: Job, work: Callable[[], object]) -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - shown on the page; the server stays up
            job.state, job.message = "failed", f"{job.kind} failed: {exc}"
        finally:
            with self._lock:
                self._changed()

    def close(self) -> None:
        self.cancel()
        self.source.close()
        with self._display_lock:  # not while a request thread decodes from it
            self.display.close()
        with self._lock:
            self.masks.close()

    # ------------------------------------------------------------------ checks
    def _check_idle(self) -> None:
        if self.job is not None and self.job.state == "running":
            raise BusyError(f"{self.job.kind} is running: wait for it or cancel it first")

    def _check_frame(self, frame) -> None:
        check_frame_index(frame, self.num_frames)

    def _check_object(self, obj_id) -> None:
        if obj_id not in self.objects:
            raise UnknownNameError(f"object {shown(obj_id)} does not exist (objects: {self.objects}); add one first")

    def _prompts_changed(self) -> None:
        for frame in self.tracked:
            self.tracked[frame] = False
        self._changed()

    def _changed(self) -> None:
        self.version += 1


def _describe(p: FramePrompt) -> dict:
    prompt = p.prompt
    entry = {"frame": p.frame, "obj_id": p.obj_id}
    if prompt.mask is not None:
        entry["mask"] = True
    if prompt.points is not None:
        entry["points"] = prompt.points.tolist()
        entry["labels"] = prompt.labels.tolist()
    if prompt.box is not None:
        entry["box"] = prompt.box.tolist()
    return entry


def _runs(flags: dict[int, bool], value: bool) -> list[list[int]]:
    """Frames whose flag is ``value`` as ``[first, last]`` runs."""
    out: list[list[int]] = []
    for i in sorted(k for k, v in flags.items() if v == value):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def render_masks(masks: dict[int, np.ndarray], size: tuple[int, int], selected: int | None = None) -> np.ndarray:
    """``(H, W, 4)`` RGBA layer for the page: each object filled in its colour, outlined; the selected one on top."""
    h, w = size
    layer = np.zeros((h, w, 4), np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    for obj_id in sorted(masks, key=lambda i: i == selected):
        mask = masks[obj_id]
        if not mask.any():
            continue
        edge = mask & ~cv2.erode(mask.astype(np.uint8), kernel, iterations=2 if obj_id == selected else 1).astype(bool)
        layer[mask] = (*colour(obj_id), 120)
        layer[edge] = (*colour(obj_id), 255)
    return layer
