"""`hawknb triage --json` is a function of the workspace: two runs print the same bytes.

Step timings differ between runs, so they are in the JSON only with ``--timings``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hawknb_cli import run_hawknb, simulate_small


def test_two_triage_runs_print_identical_json(tmp_path: Path):
    ws = simulate_small(tmp_path / "ws", "bad_snapshot")
    first = run_hawknb("triage", str(ws), "--json", "--quiet")
    second = run_hawknb("triage", str(ws), "--json", "--quiet")
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    out = json.loads(first.stdout)
    assert out["findings"] and all("seconds" not in f for f in out["findings"])

    timed = json.loads(run_hawknb("triage", str(ws), "--json", "--quiet", "--timings").stdout)
    assert all(isinstance(f["seconds"], float) and f["seconds"] >= 0 for f in timed["findings"])
    strip = [{k: v for k, v in f.items() if k != "seconds"} for f in timed["findings"]]
    assert strip == out["findings"]
