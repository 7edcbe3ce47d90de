"""Where the work runs: checking a requested device before any work, so that a missing GPU is a one-line
error, not a traceback from deep inside PyTorch; and how many CPU threads to run on."""
from __future__ import annotations

import functools
import os
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch


def check_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device` (``None``: the first CUDA GPU when there is one, else the CPU);
    ``ValueError`` if it is not a device name or this machine has no such device."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device {device!r} is not a device name (cpu, cuda, cuda:1, mps): {exc}") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: PyTorch sees no CUDA GPU on this machine (a CPU-only build, "
                             "no driver, or CUDA_VISIBLE_DEVICES hides them); use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s), numbered from 0")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: Apple's MPS backend is not available here; use --device cpu")
    return parsed


@dataclass(frozen=True)
class ThreadChoice:
    """The CPU threads a command runs on and why: ``source`` is ``--threads``, ``OMP_NUM_THREADS`` or
    ``free cores``; ``default`` is PyTorch's own count; ``busy`` the cores other work kept busy at start-up
    (``None``: not measured) of the ``usable`` ones."""

    threads: int
    source: str
    default: int
    usable: int
    busy: float | None = None


def choose_threads(requested: int | None, environ: Mapping[str, str], default: int, usable: int,
                   busy: Callable[[], float | None]) -> ThreadChoice:
    """The thread count for PyTorch and ONNX Runtime: ``requested`` (``--threads``) when given, else what
    ``OMP_NUM_THREADS`` says, else PyTorch's ``default`` less the cores that other threads hold (``busy()``,
    asked only then), at least one. Intra-op threads wait for each other at every operator, so one that
    shares its core with another job stalls them all: on 2 busy cores, vos track on 30 frames took 221 s at
    2 threads and 62 s at 1 (benchmarks/results/threads_under_load.md)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads {requested}: a thread count is a positive integer")
        return ThreadChoice(requested, "--threads", default, usable)
    if environ.get("OMP_NUM_THREADS", "").strip():
        return ThreadChoice(default, "OMP_NUM_THREADS", default, usable)
    others = busy()
    threads = default if others is None else max(1, min(default, round(usable - others)))
    return ThreadChoice(threads, "free cores", default, usable, others)


def use_cpu_threads(requested: int | None = None) -> ThreadChoice:
    """Choose the thread count (:func:`choose_threads`) from this machine's state now and give it to PyTorch;
    ONNX Runtime sessions take ``choice.threads`` from the caller."""
    choice = choose_threads(requested, os.environ, _torch_default_threads(), usable_cpus(), busy_cpus)
    torch.set_num_threads(choice.threads)
    return choice


@functools.cache
def _torch_default_threads() -> int:
    # Asked once, before this module sets any count: a second command in one process starts from it again.
    return torch.get_num_threads()


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, as ``taskset`` or a container sets it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_cpus(samples: int = 5, interval: float = 0.02) -> float | None:
    """Threads of other processes running or waiting for a CPU now: the median of a few samples of the
    kernel's count (``/proc/loadavg``) less this process's own running threads. Where there is no such count,
    the one-minute load average; ``None`` where neither exists. An instant count, not the load average: a
    job started a moment ago counts in full, and a run of vos that just ended does not count at all."""
    counts = []
    try:
        for i in range(samples):
            if i:
                time.sleep(interval)
            with open("/proc/loadavg") as f:
                running = int(f.read().split()[3].split("/")[0])
            counts.append(running - _own_running_threads())
        return float(max(statistics.median(counts), 0))
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def _own_running_threads() -> int:
    """This process's threads that are running or runnable (``R`` in ``/proc/self/task/*/stat``): the one
    asking, and any others it started (a test calling the command line, a decoder, OpenMP's spinning pool)."""
    count = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the thread ended meanwhile
            continue
        count += text[text.rindex(")") + 2] == "R"
    return max(count, 1)
