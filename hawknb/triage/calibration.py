"""Calibrated verdict confidence: a number that matches how often such verdicts are right.

The support of the best hypothesis is a product of evidence factors; it ranks verdicts well
but is not a probability. `calibrated` maps it onto the share of verdicts right at that level:
a monotone piecewise-linear map fitted (isotonic regression, a handful of knots) on TUNING
runs of both the simulator and the independent generator (benchmarks/fit_calibration.py),
and judged on other seeds with `benchmarks/triage_accuracy.py --reliability`. `none`
verdicts keep the project's convention: their confidence is how strongly the best lead
pointed at a cause (mapped the same way), capped at `NONE_CAP`, so "nothing found" never
claims much.
"""

from __future__ import annotations

import numpy as np

from .hypotheses import Hypothesis

#: (support, confidence) knots for verdicts that name a cause. Refitted (isotonic,
#: benchmarks/fit_calibration.py) on 108 tuning runs of this code: simulator seeds 0-5 (36)
#: and the independent generator's seeds 0-3 at easy, medium and hard (72); 89 name a cause.
#: Support below 0.02 was right (cause and model) almost never, about 0.12 about 2 in 5,
#: from 0.3 nearly always; the top (0.98) is held at 0.95 because few runs back it. ECE on
#: those runs 0.077 (two-fold cross-fitted 0.088); benchmarks/results/topline_tune.md.
CAUSE_KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.02),
    (0.015, 0.02),
    (0.123, 0.429),
    (0.307, 0.95),
    (1.0, 0.95),
)
#: the most a `none` verdict claims
NONE_CAP = 0.25
#: a runner-up this close to the winner (support ratio) halves the distance to a coin flip
CLOSE_CALL = 0.8
#: below this calibrated confidence a verdict is worded as a weak lead, not a finding
LOW, MODERATE = 0.4, 0.65


def _interp(knots: tuple[tuple[float, float], ...], x: float) -> float:
    xs, ys = zip(*knots, strict=True)
    return float(np.interp(x, xs, ys))


def calibrated(best: Hypothesis, runner_up: Hypothesis | None) -> float:
    """The verdict's confidence from its support, lowered when the runner-up is a close call
    for a different cause (two explanations nearly as good: either could be right)."""
    conf = _interp(CAUSE_KNOTS, max(0.0, min(1.0, best.support)))
    if best.cause == "none":
        return min(NONE_CAP, conf)
    if (
        runner_up is not None
        and runner_up.cause != best.cause
        and best.support > 0
        and runner_up.support / best.support >= CLOSE_CALL
    ):
        conf = 0.5 + (conf - 0.5) * 0.5 if conf > 0.5 else conf
    return max(0.0, min(1.0, conf))


def wording(confidence: float) -> str:
    """The qualifier a summary starts with at this confidence ('' when confident)."""
    if confidence < LOW:
        return "low confidence"
    if confidence < MODERATE:
        return "moderate confidence"
    return ""
