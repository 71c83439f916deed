"""The seasonal baseline a timeline draws inside and after an anomaly: fitted before it.

The detector's own baseline follows the series with a trailing level (right for scoring the
next row), so hours into an anomaly it has half absorbed the drop and the band sinks with the
data -- the chart then says "this is about normal" exactly where it is not. The view wants the
other question answered: "what would the metric have been had nothing happened?". So from the
onset on, the baseline is the pre-onset seasonal profile (per-phase median of the detrended
history) plus the pre-onset level, and the band keeps its pre-onset half-width.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from ..workspace.contract import TS, VALUE


def baseline_before(
    frame: pl.DataFrame, onset: datetime, period: int | None, *, history_periods: int = 7
) -> pl.DataFrame:
    """``frame`` (ts, value, baseline[, lower, upper]; sorted by ts) with baseline and band
    replaced from ``onset`` on by a projection fitted on the rows before ``onset``.

    ``period`` is the seasonal period in rows (None or < 2: no seasonality, a flat level).
    The fit uses at most ``history_periods`` periods before the onset. Rows before the onset
    keep the detector's values; with fewer than 8 rows before the onset the frame comes back
    unchanged (nothing to fit on).
    """
    if "baseline" not in frame.columns or frame.height == 0:
        return frame
    before = int((frame[TS] < onset).sum())
    if before < 8:
        return frame
    x = frame[VALUE].cast(pl.Float64).to_numpy()
    per = int(period) if period and period >= 2 else 1
    start = max(0, before - history_periods * per)
    hist = x[start:before]
    idx = np.arange(frame.height)
    phase = idx % per
    hp = phase[start:before]
    level = float(np.nanmedian(hist))
    prof = np.zeros(per)
    if per > 1:
        for p in range(per):  # `per` is small (24 or 168 rows): a loop over phases, not rows
            vals = hist[hp == p]
            vals = vals[np.isfinite(vals)]
            prof[p] = float(np.median(vals)) - level if vals.size else 0.0
    # the level is the median of the last period before the onset, deseasonalized
    tail = slice(max(start, before - per), before)
    last = x[tail] - prof[phase[tail]]
    level = float(np.nanmedian(last)) if np.isfinite(last).any() else level
    projected = level + prof[phase]
    base = frame["baseline"].cast(pl.Float64).to_numpy().copy()
    after = idx >= before
    base[after] = projected[after]
    out = {"baseline": base}
    for col, sign in (("lower", -1.0), ("upper", 1.0)):
        if col in frame.columns:
            band = frame[col].cast(pl.Float64).to_numpy()
            half = np.abs(band[:before] - frame["baseline"].cast(pl.Float64).to_numpy()[:before])
            width = float(np.nanmedian(half[start:])) if np.isfinite(half[start:]).any() else 0.0
            band = band.copy()
            band[after] = base[after] + sign * width
            out[col] = band
    return frame.with_columns(pl.Series(k, v) for k, v in out.items())
