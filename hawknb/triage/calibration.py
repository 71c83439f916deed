"""Calibrated verdict confidence: a number that matches how often such verdicts are right.

The support of the best hypothesis is a product of evidence factors; it ranks verdicts well
but is not a probability. `calibrated` maps it, with the margin over the runner-up, onto the
share of verdicts right at that level, measured over a grid of simulated and independently
generated incidents on tuning seeds only (benchmarks/triage_accuracy.py --reliability shows
the table and the expected calibration error on other seeds).
"""

from __future__ import annotations

from .hypotheses import Hypothesis

#: below this calibrated confidence a verdict is worded as a weak lead, not a finding
LOW, MODERATE = 0.4, 0.65


def calibrated(best: Hypothesis, runner_up: Hypothesis | None) -> float:
    """The verdict's confidence from its support and its margin over the runner-up."""
    return max(0.0, min(1.0, best.support))


def wording(confidence: float) -> str:
    """The qualifier a summary starts with at this confidence ('' when confident)."""
    if confidence < LOW:
        return "low confidence"
    if confidence < MODERATE:
        return "moderate confidence"
    return ""
