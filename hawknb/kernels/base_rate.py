"""How specific a prediction shift is to one onset: the base rate of shifts that large.

A model whose predictions wander (a model retrained on fresh data every few hours, a noisy
label-based error series) "explains" whatever window is put to it: its health series shift
at almost any time. The isolation confidence at an onset says how much a series moved there;
this kernel says how often the same series moved at least as much at other times of the same
history, measured with the same statistic (:func:`series_shift`, :func:`worse_z`,
:func:`strength` and the change point's timing) at pseudo-onsets where nothing is known to
have happened. That share is a base rate: the chance that a shift this large lines up with a
window by accident. A chance-corrected score (Cohen's kappa form: how far the observed
evidence is above what chance gives, as a share of what chance leaves) then discounts a
model that explains everything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .isolation import series_shift, strength, worse_z

_DAY_US = 86_400_000_000
#: the reference each shift is measured against (as model isolation's default)
REFERENCE_US = 7 * _DAY_US
#: a pseudo-onset needs this much history before it
MIN_REFERENCE_US = _DAY_US
#: at most this many pseudo-onsets are compared (evenly spread), at least MIN_POINTS
MAX_POINTS, MIN_POINTS = 96, 12


@dataclass(frozen=True)
class ShiftBaseRate:
    """observed: the movement at the onset (0..1, the strongest series); rate: the share of
    pseudo-onsets that moved at least as much (nan when fewer than MIN_POINTS could be
    compared); n: pseudo-onsets compared."""

    observed: float
    rate: float
    n: int

    def corrected(self, confidence: float) -> float:
        """``confidence`` (0..1) beyond what chance gives: (p - rate) / (1 - rate), 0 when a
        shift this large is as common as the confidence itself; unchanged without a rate."""
        if not math.isfinite(self.rate):
            return confidence
        return chance_corrected(confidence, self.rate)


def chance_corrected(confidence: float, rate: float) -> float:
    """Cohen's kappa of a confidence against a base rate: (p - rate) / (1 - rate), floored at
    0; 0 when the base rate is 1 (everything moves that much)."""
    if rate >= 1.0:
        return 0.0
    return max(0.0, (confidence - rate) / (1.0 - rate))


def movement(
    ts_us: np.ndarray,
    series: dict[str, np.ndarray],
    *,
    onset_us: int,
    end_us: int,
    tolerance_us: int,
    reference_us: int = REFERENCE_US,
) -> float:
    """How clearly some series moved at the onset (the isolation confidence without the
    metric correlation): max over series of strength(worse z) * timing."""
    best = 0.0
    for name, x in series.items():
        sh = series_shift(
            ts_us,
            x,
            onset_us=onset_us,
            end_us=end_us,
            ref_start_us=onset_us - reference_us,
            tolerance_us=tolerance_us,
        )
        if sh is not None:
            best = max(best, strength(worse_z(sh, name)) * sh.timing)
    return best


def shift_base_rate(
    ts_us: np.ndarray,
    series: dict[str, np.ndarray],
    *,
    onset_us: int,
    end_us: int,
    tolerance_us: int,
    reference_us: int = REFERENCE_US,
) -> ShiftBaseRate:
    """The movement at [onset, end] and how often the same series moved as much elsewhere.

    ``ts_us``: sorted UTC microseconds of one model-experiment's health windows; ``series``:
    health series name -> values on those windows. Pseudo-onsets are taken from the history
    before the onset (their post window ends before it); when that history is too short, also
    from after the window, with the window's own values masked so no reference contains it.
    """
    ts_us = np.asarray(ts_us, dtype=np.int64)
    if ts_us.size and np.any(np.diff(ts_us) < 0):
        raise ValueError("ts_us must be sorted ascending")
    for name, x in series.items():
        if np.asarray(x).shape != ts_us.shape:
            raise ValueError(f"series {name!r} has {np.asarray(x).size} values for {ts_us.size} ts")
    if end_us < onset_us:
        raise ValueError(f"end_us ({end_us}) is before onset_us ({onset_us})")
    kw = {"tolerance_us": tolerance_us, "reference_us": reference_us}
    observed = movement(ts_us, series, onset_us=onset_us, end_us=end_us, **kw)
    if ts_us.size < 2:
        return ShiftBaseRate(observed, float("nan"), 0)
    post = end_us - onset_us
    step = int(np.median(np.diff(np.unique(ts_us))))
    grid = np.unique(ts_us)
    start = grid[0] + MIN_REFERENCE_US
    before = grid[(grid >= start) & (grid + post < onset_us - step)]
    masked = series
    points = before
    if before.size < MIN_POINTS:
        # the window's values (and the hours its shift may linger) are not history
        hide = (ts_us >= onset_us - step) & (ts_us <= end_us + post)
        masked = {
            k: np.where(hide, np.nan, np.asarray(v, dtype=np.float64)) for k, v in series.items()
        }
        after = grid[(grid >= start) & (grid > end_us + post) & (grid + post <= grid[-1])]
        points = np.concatenate([before, after])
    if points.size < MIN_POINTS:
        return ShiftBaseRate(observed, float("nan"), int(points.size))
    if points.size > MAX_POINTS:
        points = points[np.linspace(0, points.size - 1, MAX_POINTS).round().astype(int)]
    moved = np.array(
        [movement(ts_us, masked, onset_us=int(t), end_us=int(t) + post, **kw) for t in points]
    )
    # ties count as as large: a series that never moves gives observed 0 and rate 1
    rate = float(np.mean(moved >= observed - 1e-12))
    return ShiftBaseRate(observed, rate, int(points.size))
