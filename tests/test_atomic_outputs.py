"""Every output file of the library goes through streams.files.atomic_write: a save, write or dump call
must write to the temporary path atomic_write hands out (named ``tmp``), never to a final name."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITERS = {"save", "savefig", "write_text", "write_bytes", "imwrite"}
# Appends, not replacements: one JSON line per step, so a killed run loses at most its last line.
APPEND_ONLY = {"vos/train/trainer.py"}
# Temporaries that are no output: the app's working copy of its masks, in the system's shared temporary
# folder, is private on purpose.
PRIVATE_TEMPORARIES = {"vos/app/masks.py"}


def _target(call: ast.Call) -> ast.AST | None:
    """What a writing call writes to: ``x.write_text(...)`` -> ``x``; ``image.save(p)``, ``torch.save(obj, p)``, ``onnx.save(obj, p)``,
    ``cv2.imwrite(p, ...)``, ``open(p, "w")`` -> ``p``."""
    func = call.func
    if isinstance(func, ast.Name) and func.id == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax"):
            return call.args[0]
        return None
    if not isinstance(func, ast.Attribute) or func.attr not in WRITERS:
        return None
    if func.attr in ("write_text", "write_bytes"):
        return func.value
    if isinstance(func.value, ast.Name) and func.value.id in ("torch", "onnx"):  # save(obj, path)
        return call.args[1] if len(call.args) > 1 else None
    return call.args[0] if call.args else None


def _library_nodes(skip: set[str]):
    """``(path relative to the repository, node)`` for every syntax node of the library's code."""
    for package in ("vos", "streams", "evaluation", "memory"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in skip:
                for node in ast.walk(ast.parse(path.read_text())):
                    yield rel, node


def test_outputs_are_written_through_the_atomic_helper():
    offenders = []
    for rel, node in _library_nodes(APPEND_ONLY):
        target = _target(node) if isinstance(node, ast.Call) else None
        if target is not None and not (isinstance(target, ast.Name) and target.id == "tmp"):
            offenders.append(f"{rel}:{node.lineno}: {ast.unparse(node)[:80]}")
    assert not offenders, "written without streams.files.atomic_write:\n" + "\n".join(offenders)


def test_no_output_is_made_with_tempfiles_private_modes():
    """tempfile's files (0600) and folders (0700) keep their mode when renamed into place: outputs and their
    staging folders come from streams.files instead (test_file_modes.py checks the modes)."""
    offenders = []
    for rel, node in _library_nodes(PRIVATE_TEMPORARIES):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "tempfile":
            offenders.append(f"{rel}:{node.lineno}: tempfile.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "tempfile":
            offenders.append(f"{rel}:{node.lineno}: from tempfile import ...")
    assert not offenders, "private temporaries outside streams.files:\n" + "\n".join(offenders)


def test_the_checker_sees_a_direct_write():
    call = ast.parse('Image.fromarray(a).save(folder / "overlay.png")').body[0].value
    assert ast.unparse(_target(call)) == "folder / 'overlay.png'"
    assert _target(ast.parse("open(p)").body[0].value) is None
