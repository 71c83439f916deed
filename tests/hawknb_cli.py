"""Run the `hawknb` command line from tests, on this checkout (not an installed copy)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_hawknb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m hawknb ARGS` with this checkout first on the path."""
    return subprocess.run(
        [sys.executable, "-m", "hawknb", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT,
    )


def simulate_small(ws: Path, incident: str) -> Path:
    """A small simulated workspace (2 models, 3 days): enough for every command to run."""
    proc = run_hawknb("simulate", str(ws), "--incident", incident, "--days", "3",
                      "--rows-per-hour", "20", "--models", "2", "--features-per-model", "4",
                      "--quiet")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return ws
