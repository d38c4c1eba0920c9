"""The README's picture of runner/ holds: each module imports only from its own line of the list or the lines above.

The list in the README's *Layout* section is the house's plan; this test reads it from the README itself, so a new
module must be placed in it, and an import that runs back up the list (the start of an import circle) fails here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from runner.config import ROOT

RUNNER = ROOT / "runner"


def planned_lines() -> dict[str, int]:
    """Module name -> its line in the README's runner/ list (0 = the bottom floor)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("`runner/`, from the bottom up") :]
    block = section[section.index("```\n") + 4 : section.index("\n```", section.index("```\n") + 4)]
    lines: dict[str, int] = {}
    row = -1
    for text in block.splitlines():
        names = re.findall(r"\b([a-z_]+\*?)\.py\b", text.split("  ")[0])
        if not names:
            continue  # a continuation line of the description
        row += 1
        for name in names:
            lines[name] = row
    return lines


def runner_imports(path: Path) -> set[str]:
    """The runner modules a file imports, wherever in the file (a function-level import counts too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "runner":
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("runner."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("runner."))
    return found


def line_of(lines: dict[str, int], module: str) -> int | None:
    if module in lines:
        return lines[module]
    wild = [line for name, line in lines.items() if name.endswith("*") and module.startswith(name[:-1])]
    return wild[0] if wild else None


def test_every_runner_module_is_placed_in_the_readme() -> None:
    lines = planned_lines()
    modules = sorted(p.stem for p in RUNNER.glob("*.py") if p.stem not in {"__init__", "__main__"})
    assert [m for m in modules if line_of(lines, m) is None] == []


def test_no_runner_module_imports_from_a_line_below_its_own() -> None:
    lines = planned_lines()
    upward = []
    for path in sorted(RUNNER.glob("*.py")):
        here = line_of(lines, path.stem)
        if here is None:
            continue
        for name in runner_imports(path):
            there = line_of(lines, name)
            if there is not None and there > here:
                upward.append(f"{path.stem} imports {name}")
    assert upward == []


def test_the_check_sees_an_import_that_runs_back_up(tmp_path: Path) -> None:
    """The test above can fail: the plan orders the floors, and imports of every form are seen."""
    lines = planned_lines()
    order = [lines[m] for m in ("numbers", "store", "config", "view", "sweep", "render", "cli")]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert line_of(lines, "report_tables") == line_of(lines, "report")
    probe = tmp_path / "probe.py"
    probe.write_text("from runner import cli\nimport runner.view\ndef f():\n    from runner.sweep import Run\n")
    assert runner_imports(probe) == {"cli", "view", "sweep"}
