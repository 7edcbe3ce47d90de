"""The README stays true to the tree: its module map names every module of every package folder (and no
module that is gone), every page it links to exists, and it stays short enough to read to the end."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _module_map() -> dict[str, set[str]]:
    table = README.split("## Module map", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        folder, what = [cell.strip() for cell in line.strip("|").split("|", 1)]
        rows[folder.strip("`")] = set(re.findall(r"`([\w/]+\.py)`", what))
    return rows


def test_the_module_map_names_every_module_and_every_package():
    rows = _module_map()
    packages = {f"{p.parent.relative_to(ROOT).as_posix()}/" for p in ROOT.glob("vos/**/__init__.py")}
    packages |= {"memory/", "streams/", "evaluation/"}
    assert packages <= set(rows), f"packages missing from the README's module map: {sorted(packages - set(rows))}"
    for folder, named in rows.items():
        if not (folder.startswith("vos/") or folder in ("memory/", "streams/", "evaluation/")) or not named:
            continue
        modules = {p.name for p in (ROOT / folder).glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
        assert named == modules, f"{folder}: named but gone {sorted(named - modules)}, unnamed {sorted(modules - named)}"


def test_linked_pages_exist_and_the_readme_is_short():
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    assert len(README.splitlines()) <= 300
