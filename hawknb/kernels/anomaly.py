"""Top-line metric anomalies: when did the metric go wrong, which way, and how badly.

This is the first step of the triage tree: everything downstream (which model, which
snapshot, which feature) is searched in the time range this step returns, so the *onset*
matters more than the peak. The detector therefore:

1. detects the seasonal period (daily/weekly from the cadence, else the autocorrelation),
2. builds a robust baseline: the per-phase median seasonal profile plus a *trailing* level
   (median of the deseasonalized past), so a lasting level shift stays visible instead of being
   absorbed by a centered smoother,
3. scores rows by robust z (residual / MAD-based scale),
4. groups alerting rows into windows and moves each onset back to the CUSUM change point,
   because the first row over the threshold is usually late for a gradual degradation.

:func:`anomaly_scores` gives per-row scores in [0, 1]; with ``causal=True`` they come from the
streaming detector in :mod:`hawknb.kernels.anomaly_causal` (used for the NAB benchmark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl
from scipy.special import ndtr

from ..engine import as_lazy, collect
from ..workspace.contract import TS, VALUE
from .anomaly_causal import CausalConfig, causal_scores
from .anomaly_core import MAD_TO_SD, as_values, detect_period, fill_missing, shift

_DAY = 86_400.0
_WEEK = 7 * _DAY


@dataclass(frozen=True)
class AnomalyWindow:
    """One anomalous episode of a metric (all datetimes UTC)."""

    onset: datetime  # change point where the episode starts (CUSUM-refined)
    end: datetime  # last alerting row
    peak: datetime  # row of the largest |robust z|
    direction: int  # +1 above the baseline, -1 below
    severity: float  # largest |robust z| in the window
    confidence: float  # 1 - Bonferroni-corrected normal tail probability of the severity


@dataclass(frozen=True)
class AnomalyResult:
    windows: list[AnomalyWindow] = field(default_factory=list)  # by severity, descending
    #: one row per input row (sorted by ts): ts, value, baseline, lower, upper, score
    baseline: pl.DataFrame = field(default_factory=pl.DataFrame)
    period: int | None = None  # seasonal period in samples


def detect_anomalies(
    frame: object,
    *,
    ts: str = TS,
    value: str = VALUE,
    min_severity: float = 5.0,
    period: int | None = None,
    merge_gap: int = 3,
    cusum_drift: float = 1.5,
    max_lookback: int | None = None,
) -> AnomalyResult:
    """Find anomalous windows of one metric series (pandas or polars frame, eager or lazy).

    ``min_severity`` is the robust z a row needs to alert; the default 5 keeps a clean series
    of a few thousand Gaussian rows silent. ``period`` overrides the detected period (samples;
    0 disables seasonality). Alerting rows of the same direction less than ``merge_gap``
    samples apart form one window. The onset is the last row at which the one-sided CUSUM of
    ``direction * z - cusum_drift`` was zero, searched at most ``max_lookback`` rows (default:
    one period, or 48 rows) before the first alert.
    """
    if min_severity <= 0:
        raise ValueError(f"min_severity must be > 0, got {min_severity}")
    t, x = _read_series(frame, ts, value)
    n = x.size
    cadence = _cadence(t)
    if period is None:
        cands = tuple(round(p / cadence) for p in (_DAY, _WEEK)) if cadence > 0 else ()
        finite = x[np.isfinite(x)]
        per = detect_period(finite, candidates=cands) if finite.size >= 8 else None
    else:
        per = int(period) if period and period >= 2 else None
    slot = _slots(t, cadence)
    base = _baseline(x, slot, per)
    resid = x - base
    ok = np.isfinite(resid)
    scale = _scale(resid[ok], x[np.isfinite(x)])
    z = np.where(ok, resid / scale, np.nan)
    frame_out = pl.DataFrame(
        {
            TS: t,
            VALUE: x,
            "baseline": base,
            "lower": base - min_severity * scale,
            "upper": base + min_severity * scale,
            "score": z,
        }
    )
    lookback = max_lookback if max_lookback is not None else (per or 48)
    windows = _windows(t, z, min_severity, merge_gap, cusum_drift, lookback, n)
    windows.sort(key=lambda w: w.severity, reverse=True)
    return AnomalyResult(windows=windows, baseline=frame_out, period=per)


def anomaly_scores(
    values: object,
    timestamps: object | None = None,
    *,
    causal: bool = True,
    config: CausalConfig | None = None,
) -> np.ndarray:
    """Per-row anomaly score in [0, 1] (higher = more anomalous), same length as ``values``.

    ``causal=True``: row i's score depends only on rows 0..i (streaming; what NAB scores).
    ``causal=False``: |robust z| of :func:`detect_anomalies` mapped by z / (z + 5), using the
    whole series. Non-finite values are treated as missing. ``timestamps`` (optional, same
    length, non-decreasing) give the offline detector its cadence, and the causal scorer
    its seasonal lag in time (missing rows do not shift the phase).
    """
    x = as_values(values)
    if timestamps is not None:
        tt = pl.Series("ts", timestamps) if not isinstance(timestamps, pl.Series) else timestamps
        if tt.len() != x.size:
            raise ValueError(
                f"timestamps has {tt.len()} rows but values has {x.size}; give one per value"
            )
    if causal:
        return np.clip(causal_scores(x, config, timestamps=timestamps), 0.0, 1.0)
    if timestamps is None:  # no clock: pretend hourly, which only affects period candidates
        tt = pl.Series(TS, np.arange(x.size, dtype=np.int64) * 3_600_000_000).cast(
            pl.Datetime("us", "UTC")
        )
    frame = pl.DataFrame({TS: tt, VALUE: x}).with_row_index("_row")
    res = detect_anomalies(frame)
    z = np.abs(res.baseline["score"].to_numpy())
    # detect_anomalies sorts by ts and drops null ts: put scores back in input order
    kept = frame.filter(pl.col(TS).is_not_null()).sort(TS, maintain_order=True)["_row"]
    back = np.zeros(x.size)
    back[kept.to_numpy()] = z
    z = back
    z = np.nan_to_num(z, nan=0.0)
    return z / (z + 5.0)


# -- internals --------------------------------------------------------------------------------


def _read_series(frame: object, ts: str, value: str) -> tuple[pl.Series, np.ndarray]:
    lf = as_lazy(frame)
    names = lf.collect_schema().names()
    for col in (ts, value):
        if col not in names:
            raise ValueError(
                f"frame has no column {col!r} (columns: {names}); pass ts=/value= to name them"
            )
    df = collect(lf.select(ts, value))
    if df.height == 0:
        raise ValueError("frame is empty; anomaly detection needs at least one row")
    tcol = df[ts]
    if tcol.dtype == pl.String:
        tcol = tcol.str.to_datetime(time_zone="UTC")
    if not isinstance(tcol.dtype, pl.Datetime):
        raise ValueError(f"column {ts!r} must be a datetime, got {tcol.dtype}")
    tcol = (
        tcol.dt.replace_time_zone("UTC")
        if tcol.dtype.time_zone is None  # type: ignore[union-attr]
        else tcol.dt.convert_time_zone("UTC")
    )
    vcol = df[value]
    if not (vcol.dtype.is_numeric() or vcol.dtype == pl.Null):
        raise ValueError(
            f"column {value!r} must be numeric, got {vcol.dtype}; convert it before detecting"
        )
    df = pl.DataFrame({TS: tcol, VALUE: vcol.cast(pl.Float64)}).filter(pl.col(TS).is_not_null())
    df = df.sort(TS, maintain_order=True)
    x = as_values(df[VALUE], name=f"column {value!r}")
    if np.isnan(x).all():
        raise ValueError(f"column {value!r} has no finite value; nothing to detect")
    return df[TS].alias(TS), x


def _cadence(t: pl.Series) -> float:
    """Median spacing in seconds (0 when it cannot be told)."""
    if t.len() < 2:
        return 0.0
    d = t.diff().dt.total_microseconds().drop_nulls().to_numpy() / 1e6
    d = d[d > 0]
    return float(np.median(d)) if d.size else 0.0


def _slots(t: pl.Series, cadence: float) -> np.ndarray:
    """Integer sample index of each row on the regular grid (gaps leave holes)."""
    if cadence <= 0:
        return np.arange(t.len())
    secs = (t - t[0]).dt.total_microseconds().to_numpy() / 1e6
    return np.round(secs / cadence).astype(np.int64)


def _baseline(x: np.ndarray, slot: np.ndarray, period: int | None) -> np.ndarray:
    """Seasonal profile (per-phase median) + trailing level of the deseasonalized series."""
    filled = fill_missing(x)
    n = x.size
    level_win = max(2 * (period or 0), 48)
    if period:
        level0 = pl.Series(filled).rolling_median(period, min_samples=1, center=True).to_numpy()
        detr = x - level0
        phase = slot % period
        prof = (
            pl.DataFrame({"p": phase, "d": detr})
            .filter(pl.col("d").is_not_nan())
            .group_by("p")
            .agg(pl.col("d").median())
        )
        lut = np.zeros(period)
        lut[prof["p"].to_numpy()] = prof["d"].to_numpy()
        seasonal = lut[phase]
    else:
        seasonal = np.zeros(n)
    deseas = filled - seasonal
    s = pl.Series(deseas)
    # robust linear extrapolation of the past: medians of the two halves of the trailing
    # window give a level and a slope, so a slow trend (e.g. a weekly swing under a daily
    # period) is followed without lag while a sudden shift still stands out
    half = max(level_win // 2, 2)
    m2 = s.rolling_median(half, min_samples=1).shift(1).to_numpy()
    m1 = shift(m2, half)
    trail = np.where(np.isfinite(m1), m2 + (m2 - m1) / 2.0, m2)
    # the first rows have no past: use a centered level so they do not all alert
    warm = min(n, max(level_win // 4, 5))
    head = s.rolling_median(level_win, min_samples=1, center=True).to_numpy()
    trail[:warm] = head[:warm]
    return trail + seasonal


def _scale(resid: np.ndarray, values: np.ndarray) -> float:
    """Robust scale of the residual, floored so a constant series does not divide by 0."""
    if resid.size == 0:
        return 1.0
    mad = float(np.median(np.abs(resid - np.median(resid))))
    scale = MAD_TO_SD * mad
    if scale <= 0:
        sd = float(np.std(resid))
        scale = 0.1 * sd if sd > 0 else 0.0
    floor = 1e-9 * max(1.0, float(np.median(np.abs(values))) if values.size else 1.0)
    return max(scale, floor)


def _windows(
    t: pl.Series,
    z: np.ndarray,
    min_severity: float,
    merge_gap: int,
    drift: float,
    lookback: int,
    n: int,
) -> list[AnomalyWindow]:
    zz = np.nan_to_num(z, nan=0.0)
    alert = np.abs(zz) >= min_severity
    idx = np.flatnonzero(alert)
    if idx.size == 0:
        return []
    times = t.to_list()
    out: list[AnomalyWindow] = []
    groups: list[list[int]] = [[int(idx[0])]]
    for i in idx[1:]:
        prev = groups[-1][-1]
        if i - prev <= merge_gap and np.sign(zz[i]) == np.sign(zz[prev]):
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    n_tests = max(1, int(np.isfinite(z).sum()))
    prev_end = -1
    for g in groups:
        first, last = g[0], g[-1]
        direction = 1 if zz[first] > 0 else -1
        seg = np.abs(zz[first : last + 1])
        peak = first + int(np.argmax(seg))
        severity = float(np.abs(zz[peak]))
        onset = _cusum_onset(zz, first, direction, drift, max(prev_end + 1, first - lookback))
        prev_end = last
        tail = 2.0 * float(ndtr(-severity)) * n_tests
        confidence = float(min(1.0, max(0.0, 1.0 - tail)))
        out.append(
            AnomalyWindow(
                onset=times[onset],
                end=times[last],
                peak=times[peak],
                direction=direction,
                severity=severity if math.isfinite(severity) else 1e6,
                confidence=confidence,
            )
        )
    return out


def _cusum_onset(z: np.ndarray, first: int, direction: int, drift: float, lo: int) -> int:
    """Last row before the first alert at which the one-sided CUSUM was at zero."""
    lo = max(0, lo)
    if lo >= first:
        return first
    g = 0.0
    onset = first
    start = lo
    for i in range(lo, first + 1):
        g = max(0.0, g + direction * z[i] - drift)
        if g == 0.0:
            start = i + 1
    onset = min(start, first)
    return onset


__all__ = ["AnomalyResult", "AnomalyWindow", "CausalConfig", "anomaly_scores", "detect_anomalies"]
