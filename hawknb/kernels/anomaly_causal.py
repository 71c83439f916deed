"""Causal (streaming) anomaly scores: a row's score uses only the rows up to it.

Why causal: an on-call alert is raised as data arrives, and benchmarks of streaming detectors
(NAB) reward the *earliest* detection. Why "records": the detector fires when a row is more
surprising than anything in the recent past (a rolling maximum of its own surprise), which
adapts to every series' noise level without a global threshold and makes repeated alarms on
an ongoing incident rare. Three surprise signals are combined:

* point: robust z of the value against the trailing median/MAD,
* level: robust z of a short trailing median against the baseline before it (level shifts),
  at several time scales (3, 9, 27 rows by default): a shift of moderate size that lasts is
  a record at a longer scale long before any single row is a record,
* season: robust z of the residual against the same phase of the previous periods, with the
  period re-detected from the past at doubling checkpoints (64, 128, 256, ... rows), refined
  to the lag with the best seasonal-naive forecast, and used only where that forecast beats
  the series' median (:func:`seasonal_gain`).

A record must be strict: a surprise that only *ties* the recent maximum (a repeating pattern
of a flat or quantized series) is not news. A fourth, range-novelty signal fires when the value
leaves everything seen so far by more than ``spatial_tol`` of the range seen so far (as
Numenta's NAB detector does): a slow drift or a new plateau never looks like a spike, yet the
first value beyond the history's envelope is exactly what an operator wants to hear about,
provided it is an outlier by itself or the series' recent level is already near that edge (a
drift out); a lone mild new extreme of a noisy series is expected now and then.
While fewer than ``memory`` rows are seen the tolerance is wider (new extremes are common in a
young series).

A fifth, context-novelty signal (:mod:`hawknb.kernels.anomaly_context`) fires on the first
never-seen sequence of coarse value levels in ``memory`` rows: it catches a changed *pattern*
(a daily curve with a new shape) whose single values stay inside the usual spread.

After a firing the next ``suppress`` rows are silenced: one alert per incident.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .anomaly_context import context_novelty
from .anomaly_core import (
    detect_period,
    fill_missing,
    shift,
    trailing_median_scale,
    trailing_robust_z,
)


@dataclass(frozen=True)
class CausalConfig:
    """Knobs of :func:`causal_scores` (defaults tuned on half of NAB, see docs/anomaly.md)."""

    window: int = 2000  # rows of history for the median/MAD baseline
    min_samples: int = 20  # rows of history before a robust z is computed
    warmup: int = 100  # rows whose surprise only sets the reference (score 0)
    sd_floor: float = 0.1  # scale floor as a fraction of the rolling SD
    level_scales: tuple[int, ...] = (3, 9, 27)  # rows of the short medians of the level signals
    season_weight: float = 1.0  # 0 disables the seasonal signal
    n_seasons: int = 3
    season_min_acf: float = 0.6  # autocorrelation a period needs (a weak one only adds noise)
    max_period: int = 2100
    memory: int = 1000  # rows over which a surprise must be a record
    z_min: float = 4.0  # a surprise below this robust z is never a record
    record_half_life: float = 8000.0  # older maxima still count, halved every this many rows
    young_margin: float = 0.05  # reference raised by this x ln(memory / rows seen) when young
    suppress: int = 100  # rows silenced after a firing
    fire_at: float = 0.5  # score (record ratio 1.0) that counts as a firing for suppression
    spatial_tol: float = 0.02  # range novelty: beyond the seen range by this share (<0 disables)
    spatial_ratio: float = 1.5  # record ratio given to a range-novel row (score 0.6)
    spatial_edge: float = 0.2  # ... if its recent level is in this outer share of the range
    edge_rows: int = 9  # rows of that recent level (a median); or the row jumps from it
    context_bins: int = 8  # context novelty: range slices of the levels (0 disables)
    context_orders: tuple[int, ...] = (3, 4, 5)  # lengths of the level sequences checked
    context_ratio: float = 1.2  # record ratio given to a context-novel row (score 0.55)
    context_young_share: float = 0.8  # young series: quiet for this share of the rows seen


def _seasonal_residual(x: np.ndarray, cfg: CausalConfig, t: np.ndarray | None = None) -> np.ndarray:
    """Residual of each row against the median of the same phase in the previous periods.

    The period is decided at doubling checkpoints from the rows before each checkpoint. With
    timestamps ``t`` (see :func:`time_axis`) it is found in steps of the median time step
    (:func:`on_time_grid`) and the phase is looked up one, two, ... periods earlier *in time*
    (:func:`time_lag_rows`), so missing rows shift neither; without timestamps a period of
    P rows means "P rows earlier".
    """
    n = x.size
    out = np.full(n, np.nan)  # undefined until a period is known
    checkpoints = [int(c) for c in 2 ** np.arange(6, 40) if c < n] + [n]
    start, period, step = 0, None, None
    for c in checkpoints:
        if period is not None:
            seg = slice(start, c)
            if step is None:
                lagged = np.stack([shift(x, j * period)[seg] for j in range(1, cfg.n_seasons + 1)])
            else:
                rows = np.arange(start, c)
                lagged = np.stack(
                    [
                        _take(x, time_lag_rows(t, rows, j * period * step, step))
                        for j in range(1, cfg.n_seasons + 1)
                    ]
                )
            with np.errstate(all="ignore"):
                has = np.isfinite(lagged).any(axis=0)
                base = np.where(has, np.nanmedian(np.where(has, lagged, 0.0), axis=0), np.nan)
            out[seg] = x[seg] - base
        if c >= 64:
            # the period (and the time step) used from row c on come from rows < c only
            step = None if t is None else _median_step(t[:c])
            if step is None:
                period = _past_period(x[:c], cfg)
            else:
                grid = on_time_grid(x[:c], t[:c], step)
                period = None if grid is None else _past_period(grid, cfg)
        start = c
    return out


def on_time_grid(h: np.ndarray, t: np.ndarray, step: float) -> np.ndarray | None:
    """History ``h`` on a regular grid of ``step`` from ``t[0]``, missing steps carried forward.

    Why: the period is found from the autocorrelation at lags in *rows*. Where steps are
    missing, P rows span more than P steps (with a third of the steps missing at random, a
    288-step day is found at about 200 rows), so a row period times the step is not the
    series' period in time. On the grid, lags are steps again; without gaps the grid is ``h``
    itself. None if the grid would be over 16 times longer than ``h`` (a guard on memory for
    a series with a huge hole, where almost every step would be filled anyway).
    """
    g = np.rint((t - t[0]) / step).astype(np.int64)
    size = int(g[-1]) + 1
    if size > 16 * h.size:
        return None
    out = np.full(size, np.nan)
    out[g] = h  # two rows on one step: the later one (as a forward fill would keep it)
    return fill_missing(out)


def time_axis(timestamps: object) -> np.ndarray | None:
    """Timestamps as float64 ticks (a datetime's own unit), or None if they cannot order rows.

    Datetimes, numbers, and strings polars can parse as datetimes are read. None (the seasonal
    lag then counts rows) for other strings, timestamps with a null or non-finite entry, or
    ones that ever go backwards: a causal scorer takes the rows in the order they arrived, and
    "one period earlier in time" is only a row before the current one if time runs forward.
    """
    if isinstance(timestamps, np.ndarray) and timestamps.dtype.kind in "mM":
        if np.isnat(timestamps).any():
            return None
        t = timestamps.astype(np.int64).astype(float)  # ticks of any numpy unit
    else:
        s = timestamps if isinstance(timestamps, pl.Series) else pl.Series(timestamps)
        if s.dtype == pl.String:  # a CSV read without date parsing (the CLI reads NAB files so)
            try:
                s = s.str.to_datetime(time_unit="us")
            except pl.exceptions.PolarsError:
                return None
        if s.dtype.is_temporal():
            s = s.to_physical()  # integer ticks of the type's own unit; only ratios matter
        elif not s.dtype.is_numeric():
            return None
        t = s.cast(pl.Float64).fill_null(float("nan")).to_numpy()
    if not np.isfinite(t).all() or np.any(np.diff(t) < 0):
        return None
    return t


def _median_step(t: np.ndarray) -> float | None:
    """Median positive time step of ``t``: the cadence, as the offline detector takes it."""
    d = np.diff(t)
    d = d[d > 0]
    return float(np.median(d)) if d.size else None


def time_lag_rows(t: np.ndarray, rows: np.ndarray, lag: float, step: float) -> np.ndarray:
    """For each row in ``rows``, the earlier row nearest to ``t[row] - lag``; -1 if none.

    A row counts only if its timestamp lies within half a ``step`` of the target time (a gap
    in the data leaves that phase missing rather than standing in a row of another phase) and
    it comes before the current row (causal). Vectorized with ``np.searchsorted`` on the
    non-decreasing ``t``.
    """
    target = t[rows] - lag
    hi = np.searchsorted(t, target, side="left").clip(max=t.size - 1)  # first t >= target
    lo = (hi - 1).clip(min=0)  # last t < target (or row 0)
    pick = np.where(np.abs(t[lo] - target) <= np.abs(t[hi] - target), lo, hi)
    ok = (np.abs(t[pick] - target) <= 0.5 * step) & (pick < rows)
    return np.where(ok, pick, -1)


def _take(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x[idx] with NaN where idx is -1 (a missing lag)."""
    return np.where(idx >= 0, x[idx.clip(min=0)], np.nan)


def _past_period(h: np.ndarray, cfg: CausalConfig) -> int | None:
    """The period the seasonal signal uses after history ``h``, or None (see below)."""
    period = detect_period(h, max_lag=min(h.size // 3, cfg.max_period), min_acf=cfg.season_min_acf)
    if period is None:
        return None
    period = refine_period(h, period)
    return period if seasonal_gain(h, period) < 1.0 else None


def seasonal_gain(h: np.ndarray, period: int) -> float:
    """Median |x[t] - x[t - period]| over the median |x - median(x)| of history ``h``.

    Below 1, the same phase one period earlier forecasts a row better than the series'
    median does; at or above 1 the "period" explains nothing the level signals do not (an
    autocorrelation bump of a level-driven series, a short "period" of a few rows), and its
    residuals only add chance alarms. Pure noise gives about 1.4; a clear daily curve 0.3.
    """
    if not 1 <= period < h.size:
        raise ValueError(f"period must be in [1, {h.size}), got {period}")
    seasonal = float(np.median(np.abs(h[period:] - h[:-period])))
    level = float(np.median(np.abs(h - np.median(h))))
    if level == 0.0:
        return 0.0 if seasonal == 0.0 else np.inf
    return seasonal / level


def refine_period(x: np.ndarray, period: int) -> int:
    """The lag within 3% (at least 1 row) of ``period`` whose seasonal-naive forecast errs least.

    Why: the autocorrelation peak of a short history is biased towards shorter lags (each lag
    is summed over n - lag pairs), so a smooth daily curve of 288 rows is found at 287 after
    1024 rows; compared with the day before at the wrong lag, every steep edge of the curve
    leaves a residual and a perfectly regular series raises seasonal alarms. The mean absolute
    difference x[t] - x[t - lag] has no such bias. Ties keep ``period``.
    """
    d = max(1, round(0.03 * period))
    lags = [period] + [k for k in range(period - d, period + d + 1) if k != period]
    lags = [k for k in lags if 2 <= k < x.size // 2]
    if len(lags) < 2:
        return period
    with np.errstate(all="ignore"):
        err = [float(np.nanmean(np.abs(x[k:] - x[:-k]))) for k in lags]
    best = int(np.argmin(err))
    return lags[best] if err[best] < err[0] else period


def causal_scores(
    values: np.ndarray, cfg: CausalConfig | None = None, *, timestamps: object | None = None
) -> np.ndarray:
    """Anomaly score in [0, 1] per row, causal; 0.5 = as surprising as the recent maximum.

    ``timestamps`` (optional, one per row, non-decreasing) put the seasonal lag in time, so
    missing rows do not shift the phase; without them (or if they go backwards) it counts rows.
    """
    cfg = cfg or CausalConfig()
    t = None if timestamps is None else time_axis(timestamps)
    if t is not None and t.size != np.size(values):
        raise ValueError(
            f"timestamps has {t.size} rows but values has {np.size(values)}; give one per value"
        )
    x = fill_missing(values)
    n = x.size
    med, scale = trailing_median_scale(
        x, cfg.window, min_samples=cfg.min_samples, sd_floor=cfg.sd_floor
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        point = np.nan_to_num(np.abs(x - med) / scale, nan=0.0, posinf=1e6)
    signals = [point]
    signals += [np.abs(_level_z(x, k, cfg)) for k in cfg.level_scales if k > 1]
    season = np.zeros(n)
    if cfg.season_weight > 0:
        resid = _seasonal_residual(x, cfg, t)
        z = trailing_robust_z(resid, cfg.window, min_samples=cfg.min_samples, sd_floor=cfg.sd_floor)
        season = cfg.season_weight * np.abs(z)
        signals.append(season)
    ratio = np.zeros(n)
    for z in signals:
        ratio = np.fmax(ratio, _record_ratio(z, cfg))
    if cfg.context_bins > 0:
        novel = context_novelty(
            x,
            bins=cfg.context_bins,
            orders=cfg.context_orders,
            memory=cfg.memory,
            warmup=cfg.warmup,
            young_share=cfg.context_young_share,
        )
        ratio = np.where(novel, np.fmax(ratio, cfg.context_ratio), ratio)
    if cfg.spatial_tol >= 0:
        novel = range_novelty(x) > _range_tolerance(n, cfg)
        novel &= _drift_or_jump(x, scale, season, cfg)
        novel[: cfg.warmup] = False
        ratio = np.where(novel, np.fmax(ratio, cfg.spatial_ratio), ratio)
    score = ratio / (1.0 + ratio)
    score[: cfg.warmup] = 0.0
    if cfg.suppress > 0:
        score = _suppress(score, cfg.fire_at, cfg.suppress)
    return score


def _record_ratio(z: np.ndarray, cfg: CausalConfig) -> np.ndarray:
    """log1p(z) over its maximum in the previous ``memory`` rows (> 1: a strict record).

    Older maxima count too, fading with ``record_half_life`` (see :func:`_decayed_max`).

    While a signal has fewer than ``memory`` rows of history, its maximum so far understates
    the maximum of a full memory, so the reference is raised by
    ``young_margin`` x ln(memory / rows seen): a young series needs a clearer record.

    Every row whose z rests on at least ``2 x min_samples`` rows of history sets the
    reference, the ``warmup`` rows included (they only may not score): a reference built
    from 80 more rows is a better estimate of the series' usual maximum, which matters while
    the series is young (fewer chance records in a short series) and not once it is long.
    """
    n = z.size
    lz = np.log1p(z)
    # a signal's first rows rest on little history (and the seasonal one starts late):
    # they do not score, and the very first do not set the reference either
    live = np.flatnonzero(z)
    start = int(live[0]) if live.size else n
    ref = lz.copy()
    ref[: start + cfg.min_samples] = 0.0
    lz[: start + cfg.warmup] = 0.0
    past = shift(pl.Series(ref).rolling_max(cfg.memory, min_samples=1).to_numpy(), 1, 0.0)
    if cfg.record_half_life > 0:
        past = np.fmax(past, _decayed_max(ref, cfg.record_half_life))
    seen = (np.arange(n) - start).clip(min=1).astype(float)
    past *= 1.0 + cfg.young_margin * np.log(np.fmax(1.0, cfg.memory / seen))
    r = lz / np.fmax(past, np.log1p(cfg.z_min))
    # strict records: a tie with the recent maximum stays below the firing ratio 1
    return np.where(r > 1.0, r, np.fmin(r, 0.999))


def _decayed_max(lz: np.ndarray, half_life: float) -> np.ndarray:
    """max over j < i of lz[j] * 2 ** (-(i - 1 - j) / half_life) per row i (0 at row 0).

    The previous row counts in full, as in the rolling maximum it is combined with.

    Why: a record of the last ``memory`` rows that stays far below a large event of a few
    thousand rows ago is little news in a long, heavy-tailed series (a new 1000-row maximum
    turns up every few days by chance); older events fade with the half-life. Computed in
    log space as a cumulative maximum, so it stays vectorized.
    """
    n = lz.size
    step = np.log(2.0) / half_life
    idx = np.arange(n, dtype=float)
    with np.errstate(divide="ignore"):
        best = np.maximum.accumulate(np.log(lz) + idx * step)  # -inf where lz == 0
    out = np.exp(shift(best, 1, -np.inf) - (idx - 1.0) * step)
    return np.nan_to_num(out, nan=0.0)


def _range_tolerance(n: int, cfg: CausalConfig) -> np.ndarray:
    """``spatial_tol``, widened while fewer than ``memory`` rows are seen.

    Why: a young series sets new extremes often (a new maximum among h rows has chance 1/h),
    and its range is still small, so a 2% excursion is no news at row 200. The factor
    (memory / rows seen)^2 makes the first rows after the warm-up need a large excursion and
    falls to 1 once the history is as long as the record memory.
    """
    seen = np.arange(n, dtype=float).clip(min=1.0)
    return cfg.spatial_tol * np.fmax(1.0, cfg.memory / seen) ** 2


def _drift_or_jump(
    x: np.ndarray, scale: np.ndarray, season_z: np.ndarray, cfg: CausalConfig
) -> np.ndarray:
    """Rows where leaving the seen range is news: a jump or spike, or a drift out of the range.

    Why: a noisy series sets a new extreme now and then by chance (among h rows, the next one
    is a new maximum with chance 1/h), passing the old one by a few % of the range: iid
    Gaussian noise drew about two range alarms per 4000 rows. So does the noise of a new
    plateau after a level shift, for as long as the shift is the series' top. Such a chance
    extreme is a lone value among ordinary *recent* ones. A value beyond the range counts if

    * it jumps away from the median of the ``edge_rows`` rows before it by ``z_min`` robust
      scales (``scale``, the point signal's), or from its usual phase (``season_z``), or
    * the series drifts out: the median before it already lay in the outer ``spatial_edge``
      share of the range on that side (a machine heading for failure). ``spatial_edge`` >= 1
      turns the whole rule off (every range-novel row is news).

    Why the jump is measured from the recent median and not the point signal's trailing
    median: after a level shift that baseline is stale for ``window`` rows, and every new
    high of the plateau would look like an outlier.
    """
    if cfg.spatial_edge >= 1.0:
        return np.ones(x.size, dtype=bool)
    s = pl.Series(x)
    hi = shift(s.cum_max().to_numpy(), 1)
    lo = shift(s.cum_min().to_numpy(), 1)
    before = shift(s.rolling_median(cfg.edge_rows, min_samples=1).to_numpy(), 1)
    up = x > hi
    with np.errstate(all="ignore"):
        pos = (before - lo) / (hi - lo)  # 0 at the past minimum, 1 at the maximum
        edge = np.where(up, pos, 1.0 - pos) >= 1.0 - cfg.spatial_edge
        jump = np.abs(x - before) / scale >= cfg.z_min
    return jump | (season_z >= cfg.z_min) | edge


def range_novelty(x: np.ndarray) -> np.ndarray:
    """How far each row lies outside the [min, max] of the rows before it, in units of that range.

    0 inside the range (and wherever the past range is still empty or zero). Causal by
    construction: running extremes up to row i - 1.
    """
    s = pl.Series(x)
    hi = shift(s.cum_max().to_numpy(), 1)
    lo = shift(s.cum_min().to_numpy(), 1)
    span = hi - lo
    with np.errstate(all="ignore"):
        out = np.fmax(x - hi, lo - x) / span
    out = np.where(span > 0, out, 0.0)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)


def _level_z(x: np.ndarray, k: int, cfg: CausalConfig) -> np.ndarray:
    """Median of the last ``k`` rows against the baseline just before those rows."""
    s = pl.Series(x)
    short = s.rolling_median(k, min_samples=1).to_numpy()
    med = shift(s.rolling_median(cfg.window, min_samples=cfg.min_samples).to_numpy(), 1)
    res = x - med
    mad = shift(
        pl.Series(np.abs(res)).rolling_median(cfg.window, min_samples=cfg.min_samples).to_numpy(),
        1,
    )
    sd = shift(s.rolling_std(cfg.window, min_samples=cfg.min_samples).to_numpy(), 1)
    scale = np.fmax(np.fmax(1.4826 * mad, cfg.sd_floor * sd), 1e-9 * (1 + np.abs(med)))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (short - shift(med, k - 1)) / shift(scale, k - 1)
    return np.nan_to_num(z, nan=0.0, posinf=1e6, neginf=-1e6)


def _suppress(score: np.ndarray, fire_at: float, rows: int) -> np.ndarray:
    """Keep the first firing of a burst; silence every row within ``rows`` after it.

    Silencing all rows (not only those over ``fire_at``) keeps a lower external threshold from
    re-admitting the near-misses of the same incident.
    """
    out = score.copy()
    i = 0
    fires = np.flatnonzero(score >= fire_at)  # few rows: firings are records
    k = 0
    while k < fires.size:
        i = int(fires[k])
        out[i + 1 : i + 1 + rows] = 0.0
        k = int(np.searchsorted(fires, i + rows + 1))
    return out


__all__ = [
    "CausalConfig",
    "causal_scores",
    "on_time_grid",
    "range_novelty",
    "refine_period",
    "seasonal_gain",
    "time_axis",
    "time_lag_rows",
]
