"""Contracts of the evaluation side: scoring needs only annotations, metrics import nothing of vos, one rule
for who owns an overlapping pixel, and the command line reports user errors only."""
from __future__ import annotations

import ast
import csv
import shutil
from pathlib import Path

import pytest
import torch

import vos
from vos.cli import main
from vos.tracking.results import FrameResult, owner_map

ROOT = Path(__file__).resolve().parents[1]


def _annotations_only(shared_dir, tmp_path) -> Path:
    """davis2016-dev without its frames: Annotations/ and ImageSets/ only."""
    source = shared_dir / "data" / "davis2016-dev"
    root = tmp_path / "davis-annotations"
    shutil.copytree(source / "Annotations", root / "Annotations")
    shutil.copytree(source / "ImageSets", root / "ImageSets")
    return root


def _official_global(shared_dir) -> dict[str, float]:
    rows = csv.DictReader(open(shared_dir / "data" / "osvos-dev" / "official-davis2017-evaluation.csv"))
    return {k: float(v) for k, v in next(r for r in rows if r["object"] == "GLOBAL").items() if k != "object"}


def test_predictions_are_scored_against_a_root_without_frames(shared_dir, tmp_path, capsys):
    root = _annotations_only(shared_dir, tmp_path)
    assert not (root / "JPEGImages").exists()
    code = main(["eval", "--dataset", "davis", "--root", str(root), "--predictions",
                 str(shared_dir / "data" / "osvos-dev"), "--split", str(root / "ImageSets" / "dev.txt"),
                 "--out", str(tmp_path / "out"), "--processes", "2"])
    assert code == 0, capsys.readouterr().err
    with open(tmp_path / "out" / "global_results-dev.csv") as f:
        ours = {k: float(v) for k, v in next(csv.DictReader(f)).items()}
    for column, value in _official_global(shared_dir).items():
        assert ours[column] == pytest.approx(value, abs=5e-4), column


def test_the_python_api_runs_the_same_evaluation(shared_dir, tmp_path):
    root = _annotations_only(shared_dir, tmp_path)
    run = vos.evaluate("davis", root, predictions=shared_dir / "data" / "osvos-dev",
                       split=root / "ImageSets" / "dev.txt", out=tmp_path / "out", processes=1, progress=False)
    official = _official_global(shared_dir)
    assert run.report.global_scores()["J&F-Mean"] == pytest.approx(official["J&F-Mean"], abs=1e-6)
    assert [p.name for p in run.files] == ["global_results-dev.csv", "per-sequence_results-dev.csv", "jf_per_object.png"]
    assert run.report.table()[-1].startswith("GLOBAL")


def test_running_a_model_still_needs_the_frames(shared_dir, tmp_path):
    root = _annotations_only(shared_dir, tmp_path)
    with pytest.raises(FileNotFoundError, match="no JPEGImages"):
        vos.evaluate("davis", root, split=root / "ImageSets" / "dev.txt", out=tmp_path / "out", progress=False)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_evaluation_depends_on_nothing_in_vos():
    for path in sorted((ROOT / "evaluation").glob("*.py")):
        assert "vos" not in _imports(path), f"{path.name} imports vos"


def test_one_rule_owns_overlapping_pixels():
    logits = torch.tensor([[[2.0, -1.0, 3.0, 1.0]], [[1.0, -2.0, 3.0, 4.0]]])  # objects 7 and 3, 1x4 pixels
    # Highest logit wins; equal logits go to the lower id; no positive logit is background.
    assert owner_map([7, 3], logits).tolist() == [[7, 0, 3, 3]]
    assert owner_map([3, 7], logits.flip(0)).tolist() == [[7, 0, 3, 3]]  # the order objects come in does not matter
    result = FrameResult(0, [7, 3], logits[:, None], torch.zeros(2))
    assert result.label_map().tolist() == [[7, 0, 3, 3]]
    assert owner_map([], torch.zeros(0, 2, 3)).shape == (2, 3)


def test_evaluation_writes_label_maps_by_the_same_rule():
    """The dataset runner writes through the palette sink, which writes what FrameResult.label_map gives."""
    source = (ROOT / "vos" / "jobs" / "dataset_masks.py").read_text()
    assert "PaletteMaskSink(" in source and "def label_map" not in source
    assert "result.label_map()" in (ROOT / "vos" / "jobs" / "sinks.py").read_text()


def test_a_bug_is_not_reported_as_a_user_error(monkeypatch):
    """A KeyError from a bug keeps its traceback; a name the user got wrong is one line."""
    import vos.cli as cli

    def broken(args):
        return {}["missing"]

    parser = cli.build_parser

    def patched():
        p = parser()
        for action in p._subparsers._group_actions[0].choices.values():
            if action.prog.endswith(" info"):
                action.set_defaults(func=broken)
        return p

    monkeypatch.setattr(cli, "build_parser", patched)
    with pytest.raises(KeyError, match="missing"):
        cli.main(["info"])


def test_an_unknown_config_name_is_one_line(capsys, tmp_path):
    path = vos.save_model(vos.build_model(__import__("tiny").tiny_config()), tmp_path / "m.pt")
    assert main(["info", str(path), "--config", "no_such_config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vos info: error: unknown config 'no_such_config'") and err.count("\n") == 1
