"""The CPU thread count of the commands that run a model: --threads, else OMP_NUM_THREADS, else PyTorch's
default less the cores other work keeps busy (benchmarks/threads_under_load.py measures why)."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from tiny import tiny_tracking_model
from videos import moving_shapes, write_jpegs

from vos.cli import build_parser, main
from vos.model.device import _own_running_threads, busy_cpus, choose_threads
from vos.weights.checkpoint import save_model


def _never() -> float:
    raise AssertionError("the machine's load was measured though the count was given")


def test_the_count_given_wins_then_omp_num_threads_then_the_free_cores():
    assert choose_threads(3, {"OMP_NUM_THREADS": "2"}, 8, 16, _never).threads == 3
    choice = choose_threads(None, {"OMP_NUM_THREADS": "2"}, 2, 16, _never)
    assert (choice.threads, choice.source) == (2, "OMP_NUM_THREADS")
    assert choose_threads(None, {}, 8, 16, lambda: 0.0).threads == 8  # never more than PyTorch's own count
    choice = choose_threads(None, {}, 2, 2, lambda: 1.0)
    assert (choice.threads, choice.source, choice.busy) == (1, "free cores", 1.0)
    assert choose_threads(None, {}, 8, 8, lambda: 3.0).threads == 5
    assert choose_threads(None, {}, 2, 2, lambda: 7.0).threads == 1  # at least one
    assert choose_threads(None, {}, 4, 4, lambda: None).threads == 4  # no measure on this system
    with pytest.raises(ValueError, match="--threads 0"):
        choose_threads(0, {}, 2, 2, _never)


def test_a_cpu_bound_job_counts_as_a_busy_core():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert busy_cpus() >= 1
    finally:
        burner.kill()
        burner.wait()
    assert _own_running_threads() >= 1  # the sampling thread itself, which the kernel's count includes


@pytest.mark.parametrize("command", ["track", "live", "app", "segment", "eval", "export", "demo", "train"])
def test_every_command_that_runs_a_model_takes_threads(command):
    parser = build_parser()
    required = {"track": ["v"], "live": ["0"], "app": ["v"], "segment": ["i"], "eval": ["--dataset", "davis", "--root", "r"],
                "export": ["--onnx", "d"], "demo": [], "train": ["--out", "o"]}[command]
    assert parser.parse_args([command, *required, "--threads", "3"]).threads == 3
    assert parser.parse_args([command, *required]).threads is None
    with pytest.raises(SystemExit):
        parser.parse_args([command, *required, "--threads", "0"])


def test_vos_track_runs_on_the_threads_given(tmp_path, capsys):
    before = torch.get_num_threads()
    frames = write_jpegs(moving_shapes(3), tmp_path / "frames")
    checkpoint = save_model(tiny_tracking_model(), tmp_path / "tiny.pt")
    try:
        assert main(["track", str(frames), "--checkpoint", str(checkpoint), "--point", "40,48", "--out",
                     str(tmp_path / "out"), "--no-video", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    result = subprocess.run([sys.executable, "-m", "vos", "track", "--help"], capture_output=True, text=True, check=True)
    assert "--threads N" in result.stdout and "OMP_NUM_THREADS" in result.stdout
