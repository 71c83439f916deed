"""Start-up stays cheap: `import hawknb` and the CLI do not load the heavy stack.

No timing here (timings belong to benchmarks/startup.py); these check the cause of a slow
start instead: which modules a fresh interpreter ends up holding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "polars", "plotly", "captum", "anywidget", "nbformat", "papermill", "numpy")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy(mods: set[str]) -> list[str]:
    return sorted(m for m in HEAVY if m in mods)


def test_import_hawknb_loads_no_heavy_module() -> None:
    assert _heavy(_loaded_after("import hawknb")) == []


def test_import_widgets_package_loads_no_heavy_module() -> None:
    assert _heavy(_loaded_after("import hawknb.widgets")) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["new", "--help"],
        ["new", "bogus"],
        ["demo", "--help"],
        ["simulate", "--help"],
        ["triage", "--help"],
        ["check", "--help"],
        ["report", "--help"],
    ],
)
def test_cli_loads_only_what_the_command_needs(argv: list[str]) -> None:
    code = (
        "import sys\nfrom hawknb.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    )
    assert _heavy(_loaded_after(code)) == []


def test_lazy_names_still_resolve() -> None:
    """The lazy re-exports are the real objects, and `hawknb.triage` stays the function."""
    code = (
        "import hawknb\nfrom hawknb.triage import Finding\n"
        "assert callable(hawknb.triage) and hawknb.Finding is Finding\n"
        "from hawknb.workspace import Workspace\nassert hawknb.Workspace is Workspace\n"
        "from hawknb.simulate import simulate\nassert callable(simulate)"
    )
    assert "torch" in _loaded_after(code)  # resolving them does load the stack


def test_help_lists_every_command_with_its_own_summary() -> None:
    """The short listing is the one the sub-command modules would register themselves."""
    from hawknb.cli import COMMANDS, SUMMARY, build_parser

    full = build_parser()  # imports every command module
    sub = next(a for a in full._actions if a.dest == "command")
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name in COMMANDS:
        if name in SUMMARY:
            assert SUMMARY[name] == helps[name], name


def test_executing_a_notebook_reports_progress_per_cell(tmp_path: Path, capfd) -> None:
    """`hawknb new --execute` and `hawknb report` run for tens of seconds: a bar over the
    cells on stderr says how far they are (here the first cells fail fast: no workspace)."""
    from hawknb.notebooks import NotebookExecutionError, instantiate

    out = tmp_path / "progress.ipynb"
    with pytest.raises(NotebookExecutionError):
        instantiate("triage", out, workspace=str(tmp_path / "missing"), execute=True, progress=True)
    err = capfd.readouterr().err
    assert "progress.ipynb" in err and "cell" in err
