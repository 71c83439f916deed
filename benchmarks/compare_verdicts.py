"""Compare the verdicts of two `triage_accuracy.py --json` files scenario by scenario.

    python benchmarks/compare_verdicts.py before.json after.json [--tol 1e-6]

Exits 1 when any verdict field (cause, model, experiment, snapshot, features, upstream, layer,
metric, onset) differs, or a confidence differs by more than --tol.
"""

from __future__ import annotations

import argparse
import json
import sys

FIELDS = (
    "cause",
    "model",
    "experiment",
    "snapshot",
    "features",
    "upstream",
    "layer",
    "metric",
    "onset",
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--tol", type=float, default=1e-6)
    args = ap.parse_args()

    def load(path: str) -> dict:
        with open(path) as fh:
            return {(r["kind"], r["seed"]): r["verdict"] for r in json.load(fh)}

    before, after = load(args.before), load(args.after)
    bad = 0
    if before.keys() != after.keys():
        print(f"scenario sets differ: {sorted(before.keys() ^ after.keys())}")
        bad += 1
    max_dc = 0.0
    for key in sorted(before.keys() & after.keys()):
        b, a = before[key], after[key]
        diff = [f for f in FIELDS if b.get(f) != a.get(f)]
        dc = abs((b.get("confidence") or 0.0) - (a.get("confidence") or 0.0))
        max_dc = max(max_dc, dc)
        if diff or dc > args.tol:
            bad += 1
            print(
                f"{key}: "
                + ", ".join(f"{f}: {b.get(f)!r} -> {a.get(f)!r}" for f in diff)
                + (
                    f" confidence {b.get('confidence')} -> {a.get('confidence')}"
                    if dc > args.tol
                    else ""
                )
            )
    n = len(before.keys() & after.keys())
    print(f"{n - bad}/{n} scenarios identical (max confidence difference {max_dc:.2g})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
