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

from .isolation import _MAD_TO_SIGMA, Z_CAP, Shift, _change_point, shift_of_residuals

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
#: points before each one that the local baseline takes the median of
LOCAL_STEPS = 6


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


def _local_residuals(x: np.ndarray, ref: np.ndarray) -> np.ndarray | None:
    """Residuals against the median of the ``LOCAL_STEPS`` points before (for the post
    window: the last ones before the onset); NaN for the first reference points. A slow
    cycle (a day at a 5-minute step) barely moves over a few steps, so this baseline follows
    it when the reference holds too few cycles for a profile."""
    xr = x[ref]
    m = LOCAL_STEPS
    if xr.size < 3 * m:
        return None
    out = np.full(x.size, np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(xr[:-1], m)
    local = np.full(xr.size, np.nan)
    local[m:] = np.median(windows, axis=1)
    out[ref] = xr - local
    out[~ref] = x[~ref] - np.median(xr[-m:])
    return out


def _seasonal_residuals(
    ts_us: np.ndarray, x: np.ndarray, ref: np.ndarray, step_us: int, need: int
) -> np.ndarray | None:
    """Residuals against the same slot of the cycle (leave-one-out in the reference), None
    unless every slot the post window touches, and the typical slot, has ``need`` points."""
    period = season_period(step_us)
    if period is None:
        return None
    n_phase = period // step_us
    phase = (ts_us % period) // step_us
    counts, med, loo = _slot_medians(phase[ref], x[ref], n_phase)
    if counts[phase[~ref]].min(initial=need) < need or np.median(counts[counts > 0]) < need:
        return None
    resid = x - med[phase]
    resid[ref] = x[ref] - loo
    return resid if np.all(np.isfinite(resid)) else None


def baseline_residuals(
    ts_us: np.ndarray,
    x: np.ndarray,
    ref: np.ndarray,
    *,
    step_us: int,
    seasonal: bool | None,
) -> tuple[np.ndarray, str]:
    """Residuals of every point against its expectation, and which expectation: "flat" (the
    reference median), "seasonal" (the same slot of the cycle, leave-one-out, when every slot
    has ``MIN_CYCLES`` reference points -- ``MIN_CYCLES_FORCED`` with ``seasonal=True``) or
    "local" (the few points before). Of those available, the one that leaves the least
    reference noise is used (``seasonal=True``: the profile whenever available; False:
    never a profile). The reference residuals of the first ``LOCAL_STEPS`` points may be NaN.
    """
    options = {"flat": x - np.median(x[ref])}
    if seasonal is not False:
        need = MIN_CYCLES_FORCED if seasonal else MIN_CYCLES
        season = _seasonal_residuals(ts_us, x, ref, step_us, need)
        if season is not None:
            if seasonal:
                return season, "seasonal"
            options["seasonal"] = season
    local = _local_residuals(x, ref)
    if local is not None:
        options["local"] = local

    def noise(r: np.ndarray) -> float:
        rr = r[ref]
        return _robust(rr[np.isfinite(rr)])[1]

    kind = min(options, key=lambda k: (noise(options[k]), k != "flat"))
    return options[kind], kind


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
    resid, kind = baseline_residuals(ts_us, x, ref, step_us=step_us, seasonal=seasonal)
    keep = np.isfinite(resid)
    ts_us, x, resid, ref = ts_us[keep], x[keep], resid[keep], ref[keep]
    return shift_of_residuals(
        ts_us,
        x,
        resid,
        ref,
        ~ref,
        onset_us=onset_us,
        tolerance_us=tolerance_us,
        seasonal=kind == "seasonal",
        counts=(n_ref, n_post),
    )


#: most regressors in an own-change fit (a hub's 40 parents would overfit a week of points)
MAX_PARENTS = 8


def own_shift(
    ts_us: np.ndarray,
    values: np.ndarray,
    parents: list[tuple[np.ndarray, np.ndarray]],
    *,
    onset_us: int,
    tolerance_us: int,
) -> tuple[float, float] | None:
    """(z, timing) of the part of a series its parents' series do not explain.

    The series is regressed (least squares, with intercept) on the same statistic of its
    causes over the reference points they share; the residual's post-onset median, in robust
    reference spreads, is the node's *own* change -- what a root-cause outlier injected into
    a node's noise term looks like when its parents' variance swamps it in the raw series.
    Only where the fit is not extrapolated: when a cause's post-onset median leaves the
    1-99% range of its reference values (the cause itself moved), a linear fit from normal
    operation says nothing about how much of the node's change it carries, and this is None --
    the walk over the graph judges those nodes. None also without parents, or with fewer than
    max(10, 3 x regressors) shared reference points.
    """
    if not parents:
        return None
    ts_us = np.asarray(ts_us, dtype=np.int64)
    cols = [np.asarray(values, dtype=np.float64)]
    for pts, px in parents[:MAX_PARENTS]:
        i = np.clip(np.searchsorted(pts, ts_us), 0, max(pts.size - 1, 0))
        hit = pts.size > 0 and (pts[i] == ts_us)
        cols.append(np.where(hit, px[i], np.nan) if pts.size else np.full(ts_us.size, np.nan))
    m = np.column_stack(cols)
    ok = np.all(np.isfinite(m), axis=1)
    ref, post = ok & (ts_us < onset_us), ok & (ts_us >= onset_us)
    k = m.shape[1]
    if ref.sum() < max(10, 3 * k) or not post.any():
        return None
    lo, hi = np.quantile(m[ref, 1:], [0.01, 0.99], axis=0)
    moved = np.median(m[post, 1:], axis=0)
    if np.any((moved < lo) | (moved > hi)):
        return None
    design = np.column_stack([np.ones(ts_us.size), m[:, 1:]])
    design[~ok] = 0.0
    coef, *_ = np.linalg.lstsq(design[ref], m[ref, 0], rcond=None)
    resid = m[:, 0] - design @ coef
    center, mad = _robust(resid[ref])
    scale = max(mad, 1e-4 * abs(float(np.median(m[ref, 0]))), 1e-12)
    z = float(np.clip((np.median(resid[post]) - center) / scale, -Z_CAP, Z_CAP))
    sel = resid[ok]
    cp = _change_point(sel)
    if cp is None or not math.isfinite(z):
        return (z if math.isfinite(z) else 0.0), 0.0
    change_us = int(ts_us[ok][cp])
    return z, float(math.exp(-abs(change_us - onset_us) / max(tolerance_us, 1)))


__all__ = [
    "MIN_CYCLES",
    "baseline_residuals",
    "default_windows",
    "node_shift",
    "own_shift",
    "sampling_step",
    "season_period",
]
