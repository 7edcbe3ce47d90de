"""Rules about the architecture that stay true: the layers import one way, and commands import only what they
run (``vos --help`` and scoring masks import no torch; ``import vos`` no timm).

Imports are read from every module's source (``ast``), functions' own imports and type-checking imports
included, so that a lazy import is no way around a rule.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("vos", "evaluation", "memory", "streams")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it, by absolute name: ``from .x import y`` gives both
    ``pkg.x`` and ``pkg.x.y`` (``y`` may be a module)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


MODULES = {_module_name(p): _imports(p) for top in PACKAGES for p in sorted((ROOT / top).rglob("*.py"))}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# id: (the modules a rule is about, what they must not import, why)
RULES = {
    "model": (("vos.model",), ("vos",), "the network is the bottom layer: it imports nothing of vos but vos.errors"),
    "tracking": (("vos.tracking",), ("vos.jobs", "vos.app", "vos.cli", "vos.train", "vos.export", "vos.sam2_compat"),
                 "the trackers know the model and the memory, not the jobs, the app, the command line or the exporter"),
    "image": (("vos.image",), ("vos.tracking", "vos.jobs", "vos.app", "vos.cli", "vos.train", "vos.export"),
              "the image predictor and mask generator are the model on still images, nothing more"),
    "weights": (("vos.weights",), ("vos.tracking", "vos.image", "vos.jobs", "vos.app", "vos.cli", "vos.train",
                                   "vos.export"), "loading weights builds the network and nothing that runs it"),
    "onnx-runtime": (("vos.export.runtime", "vos.export.format"), ("vos.export.exporter",),
                     "the ONNX runtime reads the format both share; it never needs torch.onnx's exporter"),
    "errors": (("vos.errors",), ("vos",), "every command imports vos.errors: it must stay free of the rest"),
    "evaluation": (("evaluation",), ("vos",), "the evaluator scores masks from any tool"),
    "libraries": (("memory", "streams"), ("vos", "evaluation"), "memory and streams are libraries vos builds on"),
    "memory": (("memory",), ("streams",), "the memory bank knows tensors, not frame sources"),
    "cli": (("vos",), ("vos.cli",), "nothing but 'python -m vos' runs the command line"),
}
# What a module may import although a rule bans the package around it (a module may always import itself).
ALLOWED = {"vos.model": ("vos.model", "vos.errors"), "vos.__main__": ("vos.cli",)}


@pytest.mark.parametrize("rule", RULES)
def test_the_layers_import_one_way(rule):
    owners, banned, why = RULES[rule]
    broken = []
    for module, imports in MODULES.items():
        if not _within(module, owners):
            continue
        allowed = next((a for prefix, a in ALLOWED.items() if _within(module, (prefix,))), ()) + (module,)
        broken += [f"{module} imports {i}" for i in sorted(imports)
                   if _within(i, banned) and not _within(i, allowed)]
    assert not broken, f"{why}:\n" + "\n".join(broken)


def test_the_rules_see_every_layer():
    """A rule about a package that is not there (renamed, moved) would pass without checking anything."""
    for owners, banned, _ in RULES.values():
        for prefix in owners + banned:
            assert any(_within(m, (prefix,)) for m in MODULES), prefix


# ---------------------------------------------------------------------------------------- start-up costs
_PROBE = """
import json, sys
{body}
heavy = ("torch", "timm", "torchvision", "matplotlib", "av", "supervision")
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))))
"""


def _loaded(body: str, cwd: Path = ROOT) -> list[str]:
    """The heavy packages a fresh interpreter has imported after running ``body``."""
    done = subprocess.run([sys.executable, "-c", _PROBE.format(body=body)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_command_line_imports_no_torch_to_parse():
    """``import vos.cli`` and every ``--help`` (the commands' and each subcommand's) cost no torch."""
    body = """
import contextlib, io
from vos.cli import build_parser, main
commands = list(build_parser()._subparsers._group_actions[0].choices)
assert len(commands) >= 10, commands
for argv in [["--help"]] + [[c, "--help"] for c in commands]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            assert exc.code == 0, argv
"""
    assert _loaded("import vos.cli") == []
    assert _loaded(body) == []


def test_import_vos_and_its_model_api_import_no_timm():
    """timm is for EdgeTAM's and EfficientTAM's trunks only: imported when one is built."""
    assert _loaded("import vos") == []
    assert "timm" not in _loaded("import vos; vos.load_model, vos.SAM2Model, vos.get_config('sam2.1_hiera_tiny')")


def test_scoring_predictions_imports_no_torch(tmp_path):
    """``vos eval --predictions`` reads PNGs and computes J&F: no torch, no video decoder."""
    from streams.masks import write_palette_png

    rng = np.random.default_rng(0)
    for root in (tmp_path / "gt" / "Annotations" / "480p" / "seq", tmp_path / "pred" / "seq"):
        root.mkdir(parents=True)
        for t in range(4):
            mask = np.zeros((24, 32), np.uint8)
            y, x = rng.integers(4, 12, 2)
            mask[y:y + 8, x:x + 10] = 1
            write_palette_png(root / f"{t:05d}.png", mask)
    body = f"""
from vos.cli import main
assert main(["eval", "--dataset", "davis", "--root", {str(tmp_path / "gt")!r}, "--predictions",
             {str(tmp_path / "pred")!r}, "--out", {str(tmp_path / "out")!r}, "--processes", "1"]) == 0
"""
    assert not {"torch", "timm", "av"} & set(_loaded(body))
    assert (tmp_path / "out" / "global_results-val.csv").is_file()
