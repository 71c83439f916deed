"""Fit the map from hypothesis support to verdict confidence on tuning runs.

Reads the ``--json`` output of `benchmarks/triage_accuracy.py` runs on TUNING seeds (the
simulator's and, with ``--dirs``, the independent generator's), fits an isotonic regression of
"the verdict was right" on the best hypothesis' support for the verdicts that name a cause,
and prints the knots for `hawknb/triage/calibration.py`, then a reliability table and the
expected calibration error of the fitted map on those runs, and a two-fold cross-fitted ECE
(fit on half the runs, judge on the other half): a map judged only on the runs it was fitted
on flatters itself.

    python benchmarks/fit_calibration.py runs_sim.json runs_indep.json

Run it with the calibration the runs were made with in place: a close call (a runner-up for
another cause near the winner) is recognised by the recorded confidence falling short of
that map.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.triage_accuracy import reliability, right
from hawknb.triage import calibration

#: knots kept per map: few, so the map cannot memorise single runs
KNOTS = 6


def fit(points: list[tuple[float, bool]]) -> list[tuple[float, float]]:
    """Isotonic fit of right-or-not on support, summarised as KNOTS (support, confidence)."""
    if len(points) < 4:
        return [(0.0, 0.5), (1.0, 0.5)]
    x = np.array([p[0] for p in points])
    y = np.array([float(p[1]) for p in points])
    iso = IsotonicRegression(y_min=0.02, y_max=0.98, out_of_bounds="clip").fit(x, y)
    qs = np.unique(np.concatenate([[0.0], np.quantile(x, np.linspace(0, 1, KNOTS)), [1.0]]))
    return [(round(float(q), 3), round(float(iso.predict([q])[0]), 3)) for q in qs]


def _close_call(row: dict[str, Any]) -> bool:
    """Whether the run's confidence was lowered for a close runner-up: the recorded
    confidence is clearly below the map of the calibration the run was made with (the
    support is recorded rounded, so a small difference is rounding, not a close call)."""
    base = calibration._interp(calibration.CAUSE_KNOTS, max(0.0, min(1.0, row["support"])))
    return base - float(row["verdict"]["confidence"]) > 0.02


def apply(rows: list[dict[str, Any]], knots: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """The rows with their cause verdicts' confidence recomputed with ``knots`` (a close
    call halves the distance to a coin flip, as `calibration.calibrated` does)."""
    out = []
    for r in rows:
        if r["verdict"]["cause"] == "none":
            out.append(r)
            continue
        conf = calibration._interp(tuple(knots), max(0.0, min(1.0, r["support"])))
        if _close_call(r) and conf > 0.5:
            conf = 0.5 + (conf - 0.5) * 0.5
        out.append({**r, "verdict": {**r["verdict"], "confidence": conf}})
    return out


def group(row: dict[str, Any]) -> str:
    """The run's data set: the independent generator's difficulty, or the simulator."""
    level = row.get("difficulty")
    return f"independent {level}" if level else "simulator"


def cross_fitted(rows: list[dict[str, Any]], folds: int = 2) -> list[dict[str, Any]]:
    """Every row judged by a map fitted on the other folds only (rows dealt round-robin in
    their given order), so no run's confidence comes from a map it helped fit."""
    judged = []
    for i in range(folds):
        held = rows[i::folds]
        train = [
            r
            for j in range(folds)
            if j != i
            for r in rows[j::folds]
            if r["verdict"]["cause"] != "none"
        ]
        judged += apply(held, fit([(r["support"], right(r)) for r in train]))
    return judged


def by_group(rows: list[dict[str, Any]]) -> str:
    """Expected calibration error per data set (see `group`), with the counts behind it."""
    lines = ["| data | verdicts naming a cause | right | ECE |", "|---|---|---|---|"]
    for name in sorted({group(r) for r in rows}):
        rs = [r for r in rows if group(r) == name]
        cause = [r for r in rs if r["verdict"]["cause"] != "none"]
        _, ece = reliability(rs)
        lines.append(f"| {name} | {len(cause)} | {sum(map(right, cause))} | {ece:.3f} |")
    return "\n".join(lines)


def main(paths: list[str]) -> int:
    rows = [r for p in paths for r in json.loads(Path(p).read_text())]
    cause = [r for r in rows if r["verdict"]["cause"] != "none"]
    print(f"# {len(cause)} cause verdicts, {len(rows) - len(cause)} none verdicts")
    knots = fit([(r["support"], right(r)) for r in cause])
    print(f"CAUSE_KNOTS = {tuple(knots)}")
    table, ece = reliability(rows)
    print(f"\nas run (current map): ECE {ece:.3f}\n{table}")
    table, ece = reliability(apply(rows, knots))
    print(f"\nfitted map, on the runs it was fitted on: ECE {ece:.3f}\n{table}")
    judged = cross_fitted(rows)
    table, ece = reliability(judged)
    print(f"\ntwo-fold cross-fitted (each half judged by the other half's map): ECE {ece:.3f}")
    print(table)
    print(f"\ncross-fitted, per data set:\n{by_group(judged)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
