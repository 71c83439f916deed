"""benchmarks/difficulty_grid.py: the one table over the per-knob runs."""

from __future__ import annotations

import json

from benchmarks.difficulty_grid import GRID, command, slug, table


def _run(level: str, cause: str, conf: float, ok: bool) -> dict:
    truth = "none" if cause == "none" and ok else "bad_snapshot"
    return {
        "level": level,
        "verdict": {"cause": cause, "confidence": conf},
        "truth": {"cause": truth},
        "score": {"full": ok, "cause": ok, "model": ok, "metric": True},
    }


def test_one_line_per_level_with_counts_and_calibration(tmp_path):
    (tmp_path / "hard_preset.json").write_text(
        json.dumps([_run("hard", "bad_snapshot", 0.9, True), _run("hard", "none", 0.7, False)])
    )
    rows = [_run("6", "none", 0.6, False)] * 3 + [_run("12", "bad_snapshot", 0.97, True)] * 2
    (tmp_path / "rows_per_slot.json").write_text(json.dumps(rows))
    text = table(tmp_path)
    lines = [ln for ln in text.splitlines() if ln.startswith("| ")][1:]
    assert lines[0].startswith("| (none) | hard | 2 | 1/2 | 1/2 | 2/2 |")
    assert "| 1/1 at 0.90 | 0/1 at 0.70 |" in lines[0]
    # levels in numeric order, each with its own ECE: 3 wrong at 0.6 -> 0.6; 2 right at 0.97
    assert lines[1].startswith("| rows_per_slot | 6 | 3 | 0/3 | 0/3 | 3/3 | 0.600 |")
    assert lines[2].startswith("| rows_per_slot | 12 | 2 | 2/2 | 2/2 | 2/2 | 0.030 |")
    assert len(lines) == 3  # knobs without runs are left out


def test_each_grid_row_is_one_accuracy_run_on_the_hard_preset(tmp_path):
    for name, knob, pins, kinds in GRID:
        cmd = command(name, knob, pins, kinds, "5-6", tmp_path)
        assert cmd[cmd.index("--difficulties") + 1] == "hard"
        assert cmd[cmd.index("--json") + 1] == str(tmp_path / f"{slug(name)}.json")
        assert ("--knob" in cmd) == (knob is not None)
        assert all(f"{p}" in cmd for p in pins)
