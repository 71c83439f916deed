"""Per-series change scores for the root-cause kernel, sized by the series' own cadence.

A root-cause walk is only as good as its "did this node change at the onset?" answers. Two
ways to get them wrong, both seen on service graphs sampled every 5 minutes:

* windows fixed in hours assume hourly data: 6 h after the onset is 72 points at a 5-minute
  step and a quarter point at a daily step. Defaults here are counted in sampling steps.
* a time-of-day profile built from two days takes medians of 2 points per slot; each
  reference point is then half of its own baseline, its residual shrinks by ~1/sqrt(2), the
  measured noise shrinks with it and noise reads as change. The profile here needs
  ``MIN_CYCLES`` points per slot, judges each reference point against the *other* points of
  its slot (leave-one-out), and is kept only when it lowers the noise it is meant to remove.
"""

from __future__ import annotations

import math

import numpy as np

from .isolation import _MAD_TO_SIGMA, Z_CAP, Shift, _change_point, _from_us

_DAY_US = 86_400_000_000
_WEEK_US = 7 * _DAY_US
#: reference points per time-of-day slot before a seasonal profile is used on its own
MIN_CYCLES = 5
#: ... and when the caller asked for one (seasonal=True); fewer than this is never a profile
MIN_CYCLES_FORCED = 3
#: default post window and reference, in sampling steps (6 h / 7 d at an hourly step)
WINDOW_STEPS = 6
REFERENCE_STEPS = 168
#: the reference covers at least this much time when the step allows (a profile needs cycles)
REFERENCE_MIN_US = 7 * _DAY_US
#: ... but never more than this many steps (a 1-minute series does not need 10k points)
REFERENCE_MAX_STEPS = 4032


def sampling_step(ts_us: np.ndarray) -> int | None:
    """The median spacing of the distinct timestamps (microseconds), None with fewer than 2."""
    u = np.unique(np.asarray(ts_us, dtype=np.int64))
    if u.size < 2:
        return None
    return int(np.median(np.diff(u)))


def default_windows(step_us: int) -> tuple[int, int]:
    """(post window, reference) in microseconds for a series sampled every ``step_us``.

    Post: ``WINDOW_STEPS`` steps. Reference: ``REFERENCE_STEPS`` steps, stretched to a week
    when that is at most ``REFERENCE_MAX_STEPS`` steps (so sub-hourly data still sees enough
    days for a time-of-day profile) -- 6 h / 7 d hourly, 30 min / 7 d at 5 minutes, 6 d / 168 d
    daily.
    """
    ref = REFERENCE_STEPS * step_us
    if ref < REFERENCE_MIN_US:
        ref = min(REFERENCE_MIN_US, REFERENCE_MAX_STEPS * step_us)
    return WINDOW_STEPS * step_us, ref


def season_period(step_us: int) -> int | None:
    """The cycle a profile is built over: a day for sub-daily steps, a week for steps that
    divide one, none otherwise."""
    for period in (_DAY_US, _WEEK_US):
        if 0 < step_us < period and period % step_us == 0:
            return period
    return None


def _slot_medians(phase: np.ndarray, x: np.ndarray, n_phase: int) -> tuple[np.ndarray, ...]:
    """Per slot: the count, the median of all its points, and for each point the median of the
    *other* points of its slot (leave-one-out), all vectorized over one lexsort."""
    counts = np.bincount(phase, minlength=n_phase)
    order = np.lexsort((x, phase))
    sx = x[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    med = np.full(n_phase, np.nan)
    has = counts > 0
    lo, hi = starts + (counts - 1) // 2, starts + counts // 2
    med[has] = 0.5 * (sx[lo[has]] + sx[hi[has]])
    # leave-one-out: the point at rank r of k; the others' median sits at ranks (k-2)//2 and
    # (k-1)//2 of the remaining k-1, i.e. one further when at or past r
    k = counts[phase[order]]
    r = np.arange(x.size) - starts[phase[order]]
    loo = np.full(x.size, np.nan)
    ok = k >= 2
    a, b = (k - 2) // 2, (k - 1) // 2
    a = a + (a >= r)
    b = b + (b >= r)
    base = starts[phase[order]]
    loo[order[ok]] = 0.5 * (sx[(base + a)[ok]] + sx[(base + b)[ok]])
    return counts, med, loo


def _robust(resid: np.ndarray) -> tuple[float, float]:
    center = float(np.median(resid))
    return center, float(np.median(np.abs(resid - center))) * _MAD_TO_SIGMA


def baseline_residuals(
    ts_us: np.ndarray,
    x: np.ndarray,
    ref: np.ndarray,
    *,
    step_us: int,
    seasonal: bool | None,
) -> tuple[np.ndarray, bool]:
    """Residuals of every point against its expectation, and whether a profile was used.

    Flat: the reference median. Seasonal (``seasonal`` True, or None and the profile lowers
    the reference noise): the median of the reference points in the same slot of the cycle,
    leave-one-out for the reference points themselves, when every slot the post window
    touches has ``MIN_CYCLES`` (forced: ``MIN_CYCLES_FORCED``) reference points.
    """
    flat = x - np.median(x[ref])
    period = season_period(step_us)
    if seasonal is False or period is None:
        return flat, False
    need = MIN_CYCLES_FORCED if seasonal else MIN_CYCLES
    n_phase = period // step_us
    phase = (ts_us % period) // step_us
    counts, med, loo = _slot_medians(phase[ref], x[ref], n_phase)
    post_phase = phase[~ref]
    if counts[post_phase].min(initial=need) < need or np.median(counts[counts > 0]) < need:
        return flat, False
    resid = x - med[phase]
    resid[ref] = x[ref] - loo
    if not np.all(np.isfinite(resid)):
        return flat, False
    if seasonal is None and _robust(resid[ref])[1] >= _robust(flat[ref])[1]:
        return flat, False
    return resid, True


def node_shift(
    ts_us: np.ndarray,
    values: np.ndarray,
    *,
    onset_us: int,
    end_us: int,
    ref_start_us: int,
    tolerance_us: int,
    step_us: int,
    seasonal: bool | None = None,
) -> Shift | None:
    """How one series changed at the onset: reference [ref_start, onset), post [onset, end].

    Same measurements as :func:`hawknb.kernels.isolation.series_shift` (median post residual
    over the reference's robust spread, best single change point and its distance to the
    onset) with the cadence-aware, leave-one-out baseline above. None when the reference has
    fewer than 3 finite points or the post window none.
    """
    ts_us = np.asarray(ts_us, dtype=np.int64)
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(ts_us, kind="stable")
    ts_us, x = ts_us[order], x[order]
    ok = np.isfinite(x) & (ts_us >= ref_start_us) & (ts_us <= end_us)
    ts_us, x = ts_us[ok], x[ok]
    ref = ts_us < onset_us
    n_ref, n_post = int(ref.sum()), int((~ref).sum())
    if n_ref < 3 or n_post < 1:
        return None
    resid, seasonal_used = baseline_residuals(ts_us, x, ref, step_us=step_us, seasonal=seasonal)
    center, mad = _robust(resid[ref])
    level = float(np.median(x[ref]))
    scale = max(mad, 1e-4 * abs(level), 1e-12)
    delta = float(np.median(resid[~ref]) - center)
    z = float(np.clip(delta / scale, -Z_CAP, Z_CAP)) if math.isfinite(delta) else 0.0
    cp = _change_point(resid)
    change_ts, timing = None, 0.0
    if cp is not None:
        change_us = int(ts_us[cp])
        change_ts = _from_us(change_us)
        timing = float(math.exp(-abs(change_us - onset_us) / max(tolerance_us, 1)))
    return Shift(
        before=level,
        after=float(np.median(x[~ref])),
        delta=delta,
        z=z,
        change_ts=change_ts,
        timing=timing,
        seasonal=seasonal_used,
        n_before=n_ref,
        n_after=n_post,
    )


__all__ = [
    "MIN_CYCLES",
    "baseline_residuals",
    "default_windows",
    "node_shift",
    "sampling_step",
    "season_period",
]
