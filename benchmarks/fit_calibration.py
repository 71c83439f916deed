"""Fit the map from hypothesis support to verdict confidence on tuning runs.

Reads the ``--json`` output of `benchmarks/triage_accuracy.py` runs on TUNING seeds (the
simulator's and the independent generator's), fits an isotonic regression of "the verdict was
right" on the best hypothesis' support, separately for `none` verdicts and for the others, and
prints the knots for `hawknb/triage/calibration.py`. Check the result on other seeds with
`triage_accuracy.py --reliability`: a map judged on the runs it was fitted on says little.

    python benchmarks/fit_calibration.py runs_sim.json runs_indep.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.triage_accuracy import right

#: knots kept per map: few, so the map cannot memorise single runs
KNOTS = 6


def fit(points: list[tuple[float, bool]]) -> list[tuple[float, float]]:
    """Isotonic fit of right-or-not on support, summarised as KNOTS (support, confidence)."""
    if len(points) < 4:
        return [(0.0, 0.5), (1.0, 0.5)]
    x = np.array([p[0] for p in points])
    y = np.array([float(p[1]) for p in points])
    iso = IsotonicRegression(y_min=0.02, y_max=0.98, out_of_bounds="clip").fit(x, y)
    qs = np.unique(np.quantile(x, np.linspace(0, 1, KNOTS)))
    return [(round(float(q), 3), round(float(iso.predict([q])[0]), 3)) for q in qs]


def main(paths: list[str]) -> int:
    rows = [r for p in paths for r in json.loads(Path(p).read_text())]
    cause = [(r["support"], right(r)) for r in rows if r["verdict"]["cause"] != "none"]
    none = [(r["support"], right(r)) for r in rows if r["verdict"]["cause"] == "none"]
    print(f"# {len(cause)} cause verdicts, {len(none)} none verdicts")
    print(f"CAUSE_KNOTS = {tuple(fit(cause))}")
    print(f"NONE_KNOTS = {tuple(fit(none))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
