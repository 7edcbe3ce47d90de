"""The README's set-up is what CI runs: every command of its set-up block (but the demo) appears in .ci/run,
and the test installer brings pytest, the ONNX extra and the oracles."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set-up on a fresh machine.*?```bash\n(.*?)```", readme, re.S).group(1)
    commands = []
    for line in block.splitlines():
        code = line.split("#")[0].strip()
        commands += [c.strip() for c in code.split("&&") if c.strip()]
    return commands


def test_ci_runs_the_readme_setup_commands():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [c for c in _setup_commands() if not c.startswith("vos ")]
    assert commands == ["pip install -e .", "scripts/install-tests", "python -m pytest"]
    for command in commands:
        assert any(line == command or line.startswith(command + " ") for line in ci), command


def test_the_test_installer_brings_pytest_and_every_oracle():
    script = (ROOT / "scripts" / "install-tests").read_text()
    assert (ROOT / "scripts" / "install-tests").stat().st_mode & 0o111  # executable, as the README runs it
    assert 'pip install -e ".[test,onnx]"' in script  # the ONNX tests need the onnx extra
    for oracle in ("sam2==1.1.0", "edgetam-dimos==1.0.1", "efficient-track-anything==1.0"):
        assert oracle in script
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^test = \[.*"pytest', pyproject, re.M)
    assert re.search(r'^onnx = \[.*"onnxruntime', pyproject, re.M)
