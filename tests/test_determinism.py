"""`hawknb triage --json` is a function of the workspace: two runs print the same bytes,
whatever the process's string-hash seed and thread counts (the second run changes both).

Step timings differ between runs, so they are in the JSON only with ``--timings``.
"""

from __future__ import annotations

import json
from pathlib import Path

from hawknb_cli import run_hawknb, simulate_small


def test_two_triage_runs_print_identical_json(tmp_path: Path):
    ws = simulate_small(tmp_path / "ws", "bad_snapshot")
    first = run_hawknb("triage", str(ws), "--json", "--quiet")
    other_process = {"PYTHONHASHSEED": "12345", "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1"}
    second = run_hawknb("triage", str(ws), "--json", "--quiet", env=other_process)
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    out = json.loads(first.stdout)
    assert out["findings"] and all("seconds" not in f for f in out["findings"])

    timed = json.loads(run_hawknb("triage", str(ws), "--json", "--quiet", "--timings").stdout)
    assert all(isinstance(f["seconds"], float) and f["seconds"] >= 0 for f in timed["findings"])
    strip = [{k: v for k, v in f.items() if k != "seconds"} for f in timed["findings"]]
    assert strip == out["findings"]


def test_stable_floats_hides_last_bit_noise_and_keeps_everything_else():
    from hawknb.cli.triage import stable_floats

    a = {"c": 0.2927828184300567, "xs": [7.305680551990946, 1, "n"], "t": (float("inf"),)}
    b = {"c": 0.29278281843005677, "xs": [7.305680551990952, 1, "n"], "t": (float("inf"),)}
    assert json.dumps(stable_floats(a)) == json.dumps(stable_floats(b))
    out = stable_floats(a)
    assert out["xs"][1:] == [1, "n"] and out["t"] == [float("inf")]
    assert abs(out["c"] - a["c"]) < 1e-12  # rounding, not truncation to a few digits
    assert stable_floats(True) is True  # bools are not floats to round
