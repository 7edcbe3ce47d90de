from __future__ import annotations

import subprocess
import sys

import vos
from tiny import tiny_config
from vos.cli import main


def test_info_describes_a_checkpoint(tmp_path, capsys):
    path = vos.save_model(vos.build_model(tiny_config()), tmp_path / "m.pt")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "test_tiny" in out and "image size:  64" in out


def test_info_on_a_missing_file_fails_with_a_message(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err


def test_console_script_help_lists_commands():
    result = subprocess.run([sys.executable, "-m", "vos", "--help"], capture_output=True, text=True, check=True)
    assert "info" in result.stdout and "download" in result.stdout

