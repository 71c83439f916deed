"""Fit the maps from the triage's evidence to verdict confidence on tuning runs.

Reads the ``--json`` output of `benchmarks/triage_accuracy.py` and `benchmarks/indep_accuracy.py`
runs on TUNING seeds only (simulator 0-24, independent generator 0-99) and fits two monotone
maps (isotonic regression, summarised as a handful of knots):

* ``CAUSE_KNOTS``: "the verdict was right" (cause and model) on the best hypothesis' support,
  for the verdicts that name a cause (increasing);
* ``NONE_KNOTS``: "the `none` verdict was right" (there was no incident) on
  `calibration.doubt` of the evidence of an incident the run recorded (decreasing).

It prints the knots, the expected calibration error over all verdicts and over those naming a
cause (per data set: simulator, independent easy/medium/hard) as run, with the fitted maps on
the runs they were fitted on, and cross-fitted (each fold judged by the maps fitted on the other
folds: a map judged only on the runs it was fitted on flatters itself). ``--write`` puts the
knots into `hawknb/triage/calibration.py`.

``--logistic`` also judges the alternative that was tried and not shipped (results in
benchmarks/results/calibration.md): a logistic map on the log of a cause's own support
(support / `Hypothesis.window`) and the log of its window share, each generator weighing the
same. Cross-fitted, it brings every data set under 0.1, and it names the simulator's benign
changes (its `none` scenarios answered with a cause) at 0.5-0.9: the evidence does not tell
them from the independent generator's faint real incidents, so where the two meet the map
only moves the error from one generator to the other. The report counts both.

The refit recipe (benchmarks/results/calibration.md):

    python benchmarks/triage_accuracy.py --seeds 0-11 --jobs 1 --json runs_sim.json
    python benchmarks/indep_accuracy.py --seeds 0-7 --jobs 1 --json runs_indep.json
    python benchmarks/fit_calibration.py runs_sim.json runs_indep.json --write

Verdicts do not depend on the maps (only confidences do), so the runs need not be redone
after writing them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.triage_accuracy import calibration_report, reliability, right
from hawknb.triage import calibration
from hawknb.triage.calibration import NoneEvidence

Knots = list[tuple[float, float]]
#: knots kept per map: few, so the map cannot memorise single runs
KNOTS = 6
#: the fitted confidence never reaches certainty either way
FLOOR, CEILING = 0.02, 0.97
CALIBRATION_PY = Path(calibration.__file__)
#: the last tuning seed of the simulator (True) and of the independent generator (False)
TUNING = {True: 24, False: 99}


def fit(points: list[tuple[float, bool]], increasing: bool = True) -> list[tuple[float, float]]:
    """Isotonic fit of right-or-not on a score, summarised as KNOTS (score, confidence)."""
    if len(points) < 4:
        share = sum(p[1] for p in points) / len(points) if points else 0.5
        return [(0.0, round(share, 3)), (1.0, round(share, 3))]
    x = np.array([p[0] for p in points])
    y = np.array([float(p[1]) for p in points])
    iso = IsotonicRegression(
        y_min=FLOOR, y_max=CEILING, increasing=increasing, out_of_bounds="clip"
    ).fit(x, y)
    qs = np.unique(np.concatenate([[0.0], np.quantile(x, np.linspace(0, 1, KNOTS)), [1.0]]))
    return [(round(float(q), 3), round(float(iso.predict([q])[0]), 3)) for q in qs]


def fit_capped(points: list[tuple[float, bool]], shape: Knots) -> Knots:
    """``shape`` (a map in place) capped at the share of ``points`` that were right, except
    at score 0. For a map fitted on few points: an isotonic fit of two dozen `none` verdicts
    jumps to the ceiling wherever one or two right ones sit, so only their level is fitted,
    and the shape (decreasing in doubt) comes from the map fitted on many. Doubt 0 (no
    top-line anomaly at all) keeps its confidence: with no incident to find, how many rows
    the log had does not matter."""
    if not points:
        return list(shape)
    share = round(sum(ok for _, ok in points) / len(points), 3)
    return [(x, y if x == 0 else min(y, max(FLOOR, share))) for x, y in shape]


def is_none(row: dict[str, Any]) -> bool:
    return row["verdict"]["cause"] == "none"


def doubt_of(row: dict[str, Any]) -> float | None:
    """`calibration.doubt` of the evidence the run recorded (None for runs made before the
    evidence was recorded, or that crashed)."""
    ev = row.get("evidence")
    if not ev:
        return None
    return calibration.doubt(NoneEvidence(**ev))


def _close_call(row: dict[str, Any]) -> bool:
    """Whether the run's confidence is lowered for a close runner-up for another cause (as
    `calibration.calibrated` does), from the supports the run recorded."""
    hyps = row.get("hypotheses")
    if hyps:
        if len(hyps) < 2 or hyps[0][1] <= 0:
            return False
        (cause, best, *_), (other, second, *_) = hyps[0], hyps[1]
        return other != cause and second / best >= calibration.CLOSE_CALL
    # older runs: the recorded confidence falls clearly short of the map in place
    base = calibration._interp(calibration.CAUSE_KNOTS, max(0.0, min(1.0, row["support"])))
    return base - float(row["verdict"]["confidence"]) > 0.02


def apply(
    rows: list[dict[str, Any]],
    cause_knots: list[tuple[float, float]],
    none_knots: list[tuple[float, float]] | None = None,
    blind_knots: list[tuple[float, float]] | None = None,
    thin_knots: list[tuple[float, float]] | None = None,
) -> list[dict[str, Any]]:
    """The rows with their confidence recomputed with the knots: a cause verdict's from its
    support (with ``blind_knots`` where its labels were blind; a close call halves the
    distance to a coin flip), a `none` verdict's from the doubt of its evidence (with
    ``thin_knots`` where its log was thin; kept as run when it recorded none, or without
    ``none_knots``)."""
    out = []
    for r in rows:
        if is_none(r):
            d = doubt_of(r)
            if none_knots is None or d is None:
                out.append(r)
                continue
            knots = thin_knots if thin_knots is not None and thin(r) else none_knots
            conf = calibration._interp(tuple(knots), d)
        else:
            knots = blind_knots if blind_knots is not None and blind(r) else cause_knots
            conf = calibration._interp(tuple(knots), max(0.0, min(1.0, r["support"])))
            if _close_call(r) and conf > 0.5:
                conf = 0.5 + (conf - 0.5) * 0.5
            if unexplained(r):
                conf = min(conf, calibration.UNEXPLAINED_SNAPSHOT)
        out.append({**r, "verdict": {**r["verdict"], "confidence": conf}})
    return out


Logit = tuple[float, float, float]


def features_of(row: dict[str, Any]) -> tuple[float, float]:
    """(log own support, log window share) of a cause verdict's run (runs recorded before the
    window share was: share 1)."""
    hyps = row.get("hypotheses") or []
    window = hyps[0][2] if hyps and len(hyps[0]) > 2 else 1.0
    w = min(1.0, max(LOG_FLOOR, window))
    own = min(1.0, max(LOG_FLOOR, max(0.0, row["support"]) / w))
    return float(np.log(own)), float(np.log(w))


#: supports and window shares below this count as this (the log needs a floor)
LOG_FLOOR = 1e-3


def generator_weights(rows: list[dict[str, Any]]) -> np.ndarray:
    """Per run, a weight that gives each generator the same total: which one has more tuning
    runs is an accident of the tuning sets, and where their verdicts look alike it would
    otherwise set the confidence."""
    sim = np.array([group(r) == "simulator" for r in rows])
    n_sim, n_ind = int(sim.sum()), int((~sim).sum())
    if not n_sim or not n_ind:
        return np.ones(len(rows))
    return np.where(sim, len(rows) / (2 * n_sim), len(rows) / (2 * n_ind))


def fit_logit(rows: list[dict[str, Any]]) -> Logit:
    """(a, b, c) of sigmoid(a + b log own + c log window) on the cause verdicts' runs, every
    weight kept non-negative (a negative one is dropped and the rest refitted)."""
    y = np.array([right(r) for r in rows], dtype=int)
    if len(rows) < 4 or y.min() == y.max():
        return _constant_logit(y)
    x, weights, keep = np.array([features_of(r) for r in rows]), generator_weights(rows), [0, 1]
    while keep:
        model = LogisticRegression().fit(x[:, keep], y, sample_weight=weights)
        coef = dict(zip(keep, model.coef_[0], strict=True))
        if all(v >= 0 for v in coef.values()):
            return (float(model.intercept_[0]), float(coef.get(0, 0.0)), float(coef.get(1, 0.0)))
        keep = [k for k in keep if coef[k] >= 0]
    return _constant_logit(y)


def _constant_logit(y: np.ndarray) -> Logit:
    """The map that gives every run the share right (0.5 without runs), within the bounds."""
    share = float(np.clip(y.mean() if len(y) else 0.5, FLOOR, CEILING))
    return (float(np.log(share / (1 - share))), 0.0, 0.0)


def logit_confidence(logit: Logit, row: dict[str, Any]) -> float:
    a, b, c = logit
    own, window = features_of(row)
    return float(np.clip(1.0 / (1.0 + np.exp(-(a + b * own + c * window))), FLOOR, CEILING))


def logistic_cross_fitted(rows: list[dict[str, Any]], folds: int = 2) -> list[dict[str, Any]]:
    """The rows judged by the logistic alternative fitted on the other folds (`none` verdicts
    by the other folds' NONE_KNOTS, as `cross_fitted`)."""
    parts, judged = folds_of(rows, folds), []
    for i, held in enumerate(parts):
        train = [r for j, part in enumerate(parts) if j != i for r in part]
        logit = fit_logit([r for r in train if not is_none(r)])
        for r in apply(held, *fit_maps(train)):
            if not is_none(r):
                conf = logit_confidence(logit, r)
                if _close_call(r) and conf > 0.5:
                    conf = 0.5 + (conf - 0.5) * 0.5
                r = {**r, "verdict": {**r["verdict"], "confidence": conf}}
            judged.append(r)
    return judged


def benign_named(rows: list[dict[str, Any]], below: float = 0.3) -> str:
    """How many of the simulator's `none` scenarios were answered `none` or with a cause at
    confidence under ``below`` (the accuracy benchmark's rule for a `none` scenario)."""
    nones = [r for r in rows if group(r) == "simulator" and r["truth"]["cause"] == "none"]
    ok = sum(is_none(r) or r["verdict"]["confidence"] < below for r in nones)
    return f"{ok}/{len(nones)}"


def group(row: dict[str, Any]) -> str:
    """The run's data set: the independent generator's difficulty, or the simulator."""
    level = row.get("difficulty")
    return f"independent {level}" if level else "simulator"


def mechanism_of(row: dict[str, Any]) -> float | None:
    """The verdict hypothesis' `mechanism` as recorded; runs recorded before it was take a
    snapshot named without a layer as one with nothing found inside it."""
    if "mechanism" in row:
        return row["mechanism"]
    v = row["verdict"]
    return 0.0 if v["cause"] == "bad_snapshot" and not v.get("layer") else None


def unexplained(row: dict[str, Any]) -> bool:
    """Whether the run's verdict names a snapshot with nothing found inside it (its
    confidence is capped at `calibration.UNEXPLAINED_SNAPSHOT`)."""
    return not is_none(row) and mechanism_of(row) == 0


def blind(row: dict[str, Any]) -> bool:
    """Whether the run's verdict reads the blind map (`calibration.cause_knots` of
    `calibration.excused_by_labels`): runs recorded before the label share was count as seen;
    runs recorded before the mechanism was take a snapshot named without a layer as one with
    nothing found inside it."""
    return calibration._blind(
        calibration.excused_by_labels(mechanism_of(row), row.get("labels_seen"))
    )


def thin(row: dict[str, Any]) -> bool:
    """Whether the run's `none` verdict reads the thin-log map (`calibration.none_knots`):
    runs recorded before the log's density was count as dense."""
    return calibration.thin_log((row.get("evidence") or {}).get("rows_per_hour"))


Maps = tuple[Knots, Knots, Knots, Knots]
MAP_NAMES = ("CAUSE_KNOTS", "NONE_KNOTS", "BLIND_CAUSE_KNOTS", "THIN_NONE_KNOTS")


def fit_maps(rows: list[dict[str, Any]], only: str | None = None) -> Maps:
    """(CAUSE_KNOTS, NONE_KNOTS, BLIND_CAUSE_KNOTS, THIN_NONE_KNOTS) fitted on these rows:
    the cause maps each on the cause verdicts whose labels were seen / blind, the `none` maps
    each on the `none` verdicts of dense / thin logs. ``only`` (a map's name): that one is
    fitted, the others are the maps in place."""
    causes = [r for r in rows if not is_none(r)]
    nones = [(d, right(r), thin(r)) for r in rows if is_none(r) and (d := doubt_of(r)) is not None]
    fitted = {
        "CAUSE_KNOTS": lambda: fit([(r["support"], right(r)) for r in causes if not blind(r)]),
        "NONE_KNOTS": lambda: fit([(d, ok) for d, ok, t in nones if not t], increasing=False),
        "BLIND_CAUSE_KNOTS": lambda: fit([(r["support"], right(r)) for r in causes if blind(r)]),
        "THIN_NONE_KNOTS": lambda: fit_capped(
            [(d, ok) for d, ok, t in nones if t], list(calibration.NONE_KNOTS)
        ),
    }
    out = [
        fitted[name]() if only in (None, name) else list(getattr(calibration, name))
        for name in MAP_NAMES
    ]
    return out[0], out[1], out[2], out[3]


def folds_of(rows: list[dict[str, Any]], folds: int) -> list[list[dict[str, Any]]]:
    """Rows dealt round-robin into folds after sorting by data set, kind and seed, so every
    fold holds a share of every data set."""
    order = sorted(rows, key=lambda r: (group(r), str(r.get("kind")), r.get("seed", 0)))
    return [order[i::folds] for i in range(folds)]


def cross_fitted(
    rows: list[dict[str, Any]], folds: int = 2, only: str | None = None
) -> list[dict[str, Any]]:
    """Every row judged by maps fitted on the other folds only, so no run's confidence comes
    from a map it helped fit."""
    parts = folds_of(rows, folds)
    judged = []
    for i, held in enumerate(parts):
        train = [r for j, part in enumerate(parts) if j != i for r in part]
        judged += apply(held, *fit_maps(train, only))
    return judged


def by_group(rows: list[dict[str, Any]]) -> str:
    """Expected calibration error per data set (see `group`), with the counts behind it."""
    return calibration_report(rows, group).split("\n\nAll verdicts:")[0]


def _knots_text(name: str, knots: list[tuple[float, float]]) -> str:
    body = "".join(f"    ({x}, {y}),\n" for x, y in knots)
    return f"{name}: tuple[tuple[float, float], ...] = (\n{body})"


def write(maps: Maps, notes: dict[str, str], only: str | None = None) -> None:
    """Replace the maps (``only``: that one) in calibration.py, and the fit's note above each
    map that ``notes`` names (a map without one keeps its note)."""
    text = CALIBRATION_PY.read_text()
    for name, knots in zip(MAP_NAMES, maps, strict=True):
        if only not in (None, name):
            continue
        pattern = re.compile(
            rf"^{name}: tuple\[tuple\[float, float\], \.\.\.\] = .*?^\)$", re.S | re.M
        )
        if not pattern.search(text):
            raise SystemExit(f"{name} not found in {CALIBRATION_PY}")
        text = pattern.sub(_knots_text(name, knots), text, count=1)
    for name, new in notes.items():
        if only not in (None, name):
            continue
        fitted = re.compile(
            rf"^#: fitted by benchmarks/fit_calibration.py[^\n]*\n(?:#:[^\n]*\n)*?(?={name}:)",
            re.M,
        )
        text = fitted.sub(lambda _, new=new: new, text, count=1)
    CALIBRATION_PY.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="--json outputs of the accuracy benchmarks")
    ap.add_argument("--folds", type=int, default=2, help="folds of the cross-fitted ECE")
    ap.add_argument("--write", action="store_true", help="write the knots into calibration.py")
    ap.add_argument(
        "--logistic", action="store_true", help="also judge the logistic alternative (not shipped)"
    )
    ap.add_argument(
        "--blind-only",
        action="store_true",
        help="fit (and write) only BLIND_CAUSE_KNOTS, keeping the other maps in place",
    )
    ap.add_argument(
        "--thin-only",
        action="store_true",
        help="fit (and write) only THIN_NONE_KNOTS, keeping the other maps in place",
    )
    args = ap.parse_args(argv)
    only = "BLIND_CAUSE_KNOTS" if args.blind_only else "THIN_NONE_KNOTS" if args.thin_only else None
    rows = [r for p in args.runs for r in json.loads(Path(p).read_text())]
    rows = [r for r in rows if not r.get("error")]
    held = [r for r in rows if not 0 <= r["seed"] <= TUNING[group(r) == "simulator"]]
    if held:
        raise SystemExit(
            f"{len(held)} runs on seeds outside the tuning seeds (simulator 0-{TUNING[True]}, "
            f"independent generator 0-{TUNING[False]}): fit on tuning seeds only"
        )
    nones = [r for r in rows if is_none(r)]
    print(f"# {len(rows) - len(nones)} cause verdicts, {len(nones)} none verdicts")
    maps = fit_maps(rows, only)
    n_blind = sum(1 for r in rows if not is_none(r) and blind(r))
    n_thin = sum(1 for r in nones if thin(r))
    print(f"# {n_blind} of the cause verdicts with their labels blind")
    print(f"# {n_thin} of the none verdicts on a thin log")
    empty = [r for r in rows if unexplained(r)]
    laplace = (sum(right(r) for r in empty) + 1) / (len(empty) + 2)
    print(
        f"# {len(empty)} verdicts name a snapshot with nothing inside it, "
        f"{sum(right(r) for r in empty)} right: UNEXPLAINED_SNAPSHOT (Laplace) {laplace:.2f}, "
        f"in place {calibration.UNEXPLAINED_SNAPSHOT}"
    )
    for name, knots in zip(MAP_NAMES, maps, strict=True):
        print(_knots_text(name, knots))
    print(f"\n## as run\n\n{calibration_report(rows, group)}")
    fitted = apply(rows, *maps)
    print(f"\n## fitted maps, on the runs they were fitted on\n\n{by_group(fitted)}")
    judged = cross_fitted(rows, args.folds, only)
    print(f"\n## {args.folds}-fold cross-fitted (each fold judged by the others' maps)\n")
    print(calibration_report(judged, group))
    if args.logistic:
        logit = fit_logit([r for r in rows if not is_none(r)])
        alt = logistic_cross_fitted(rows, args.folds)
        print(
            f"\n## not shipped: logistic on log own support and log window share, "
            f"{args.folds}-fold cross-fitted\n\n(a, b, c) on all runs: "
            f"{tuple(round(v, 3) for v in logit)}\n\n{calibration_report(alt, group)}\n\n"
            f"simulator `none` scenarios answered `none` or under 0.3: as run "
            f"{benign_named(rows)}, isotonic maps cross-fitted {benign_named(judged)}, "
            f"logistic cross-fitted {benign_named(alt)}"
        )
    if args.write:
        n_sim = sum(1 for r in rows if group(r) == "simulator")
        note = (
            f"#: fitted by benchmarks/fit_calibration.py on {len(rows)} tuning runs\n"
            f"#: ({n_sim} simulator, {len(rows) - n_sim} independent generator); ECE over all "
            f"verdicts {reliability(fitted)[1]:.3f}\n"
            f"#: on those runs, {args.folds}-fold cross-fitted {reliability(judged)[1]:.3f} "
            "(benchmarks/results/calibration.md)\n"
        )
        blind_note = (
            f"#: fitted by benchmarks/fit_calibration.py on the {n_blind} cause verdicts "
            f"of {len(rows)} tuning runs\n#: whose labels were blind\n"
        )
        thin_note = (
            f"#: fitted by benchmarks/fit_calibration.py on the {n_thin} none verdicts "
            f"of {len(rows)} tuning runs\n#: whose log was thin: NONE_KNOTS capped at their share "
            "right (fit_capped)\n"
        )
        notes = {"CAUSE_KNOTS": note, "BLIND_CAUSE_KNOTS": blind_note, "THIN_NONE_KNOTS": thin_note}
        write(maps, notes, only)
        print(f"\nwrote the knots into {CALIBRATION_PY}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
