from __future__ import annotations

import subprocess
import sys

from tiny import tiny_config

import vos
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


def test_eval_scores_existing_predictions_and_writes_csv_and_plot(shared_dir, tmp_path, capsys):
    data = shared_dir / "data"
    code = main(["eval", "--dataset", "davis", "--root", str(data / "davis2016-dev"), "--predictions",
                 str(data / "osvos-dev"), "--split", str(data / "davis2016-dev/ImageSets/dev.txt"),
                 "--out", str(tmp_path), "--processes", "2"])
    assert code == 0
    out = capsys.readouterr().out
    assert "GLOBAL" in out and "0.806" in out
    assert (tmp_path / "global_results-dev.csv").exists() and (tmp_path / "jf_per_object.png").exists()


def test_eval_names_a_missing_prediction(shared_dir, tmp_path, capsys):
    data = shared_dir / "data"
    code = main(["eval", "--dataset", "davis", "--root", str(data / "davis2016-dev"), "--predictions",
                 str(tmp_path / "none"), "--out", str(tmp_path), "--processes", "1"])
    assert code == 2
    assert "missing prediction" in capsys.readouterr().err
