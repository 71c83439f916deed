"""Causal detector: the seasonal lag in time (timestamps given) rather than in rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from hawknb.kernels.anomaly import anomaly_scores
from hawknb.kernels.anomaly_causal import (
    CausalConfig,
    _past_period,
    _seasonal_residual,
    causal_scores,
    on_time_grid,
    time_axis,
    time_lag_rows,
)

DAY = 288  # 5-minute rows
STEP = 300.0  # seconds


def _noisy_day(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ph = np.arange(n) % DAY
    return 50 + 30 * np.sin(2 * np.pi * ph / DAY) + rng.normal(0, 2, n)


def _minutes(n: int) -> np.ndarray:
    return (np.datetime64("2026-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")).astype(
        "datetime64[us]"
    )


def test_time_lag_rows_picks_the_nearest_row_within_half_a_step():
    # 5-minute rows with one jittered timestamp (1040) and one missing step (1500)
    t = np.array([0.0, 300.0, 600.0, 1040.0, 1200.0, 1800.0])
    rows = np.arange(t.size)
    got = time_lag_rows(t, rows, lag=600.0, step=STEP)
    # targets -600, -300, 0, 440, 600, 1200: before the start twice, then rows 0, 1
    # (|440 - 300| = 140 <= 150 beats |440 - 600| = 160), 2, 4
    assert got.tolist() == [-1, -1, 0, 1, 2, 4]
    # 1800 - 300 = 1500 lies in the gap: 300 away from both neighbours, so the lag is missing
    assert time_lag_rows(t, np.array([5]), lag=300.0, step=STEP).tolist() == [-1]


def test_time_lag_rows_never_points_at_the_current_or_a_later_row():
    t = np.array([0.0, 0.0, 0.0, 300.0, 300.0])  # duplicate timestamps
    rows = np.arange(t.size)
    got = time_lag_rows(t, rows, lag=100.0, step=STEP)  # |target - t| <= 150 finds row itself
    assert all(g < r for g, r in zip(got, rows, strict=True) if g >= 0)


def test_regular_timestamps_give_exactly_the_row_lag():
    """Without gaps, one period in time is one period in rows: nothing may change."""
    x = _noisy_day(4032)
    x[3000:3010] += 40  # something to score
    ts = _minutes(x.size)
    assert np.array_equal(causal_scores(x), causal_scores(x, timestamps=ts))
    t = time_axis(ts)
    assert t is not None
    assert np.array_equal(
        _seasonal_residual(x, CausalConfig()),
        _seasonal_residual(x, CausalConfig(), t),
        equal_nan=True,
    )


@pytest.mark.parametrize(
    "ts",
    [
        pl.Series(_minutes(5)).cast(pl.Datetime("us", "UTC")),
        pl.Series(_minutes(5)).cast(pl.Datetime("ns")),
        _minutes(5).astype("datetime64[m]"),  # numpy units polars does not take
        np.arange(5) * 300,
        [0.0, 300.0, 600.0, 900.0, 1200.0],
        [f"2026-01-01 00:{m:02d}:00" for m in range(0, 25, 5)],  # a CSV read as text
    ],
)
def test_time_axis_reads_datetimes_numbers_and_date_strings(ts):
    t = time_axis(ts)
    assert t is not None
    d = np.diff(t)
    assert np.allclose(d, d[0]) and d[0] > 0


@pytest.mark.parametrize(
    "ts",
    [
        [0.0, 300.0, 200.0],  # goes backwards
        [0.0, None, 600.0],  # a null
        np.array(["2026-01-01", "NaT", "2026-01-03"], dtype="datetime64[D]"),
        ["a", "b", "c"],
        ["2026-01-01 00:00:00", "not a time", "2026-01-01 00:10:00"],
    ],
)
def test_unusable_timestamps_fall_back_to_the_row_lag(ts):
    assert time_axis(ts) is None


def test_backwards_timestamps_score_as_without_timestamps():
    x = _noisy_day(3000)
    ts = np.arange(x.size, dtype=float) * STEP
    ts[1500], ts[1501] = ts[1501], ts[1500]
    assert np.array_equal(causal_scores(x), causal_scores(x, timestamps=ts))


def _scattered_gaps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy day with 30% of its 5000 steps missing at random: (values, seconds)."""
    rng = np.random.default_rng(seed)
    steps = np.sort(rng.choice(np.arange(5000), size=3500, replace=False))
    return _noisy_day(5000, seed=seed)[steps], steps * STEP


@pytest.mark.parametrize("seed", range(3))
def test_the_period_is_found_in_time_steps_where_rows_are_missing(seed):
    """In rows the day is about 200 long here (a row lag of it, times the 5-minute step, is
    17 hours); on the time grid it is 288 steps, and the residual against it is noise."""
    x, t = _scattered_gaps(seed)
    grid = on_time_grid(x[:2048], t[:2048], STEP)
    assert grid is not None and grid.size > 2800
    assert abs(_past_period(grid, CausalConfig()) - DAY) <= 3  # (1% is within its noise)
    assert _past_period(x[:2048], CausalConfig()) < 230  # what the rows alone suggest
    resid = _seasonal_residual(x, CausalConfig(), t)[2048:]
    assert np.isfinite(resid).mean() > 0.9
    assert np.nanmedian(np.abs(resid)) < 3  # noise sd 2; the daily swing is 60


def test_a_grid_far_longer_than_the_rows_is_not_built():
    t = np.array([0.0, 300.0, 600.0, 300.0 * 10_000])
    assert on_time_grid(np.zeros(4), t, STEP) is None


def test_time_lag_is_causal_with_gaps():
    """Appending future rows (and timestamps) changes no earlier score."""
    x, ts = _scattered_gaps(3)
    full = causal_scores(x, timestamps=ts)
    for cut in (700, 1500, 2600):
        assert np.array_equal(causal_scores(x[:cut], timestamps=ts[:cut]), full[:cut])


def test_anomaly_scores_passes_timestamps_to_the_causal_scorer():
    keep = np.ones(4032, dtype=bool)
    keep[2400:2460] = False
    x = _noisy_day(4032, seed=1)[keep]
    ts = pl.Series(_minutes(4032)[keep]).cast(pl.Datetime("us", "UTC"))
    got = anomaly_scores(x, ts, causal=True)
    assert np.array_equal(got, np.clip(causal_scores(x, timestamps=ts), 0, 1))
    assert not np.array_equal(got, anomaly_scores(x, causal=True))  # the gap matters
    as_text = ts.dt.strftime("%Y-%m-%d %H:%M:%S")  # what `hawknb anomalies` reads from a CSV
    assert np.array_equal(anomaly_scores(x, as_text, causal=True), got)


def test_timestamps_of_the_wrong_length_are_refused():
    with pytest.raises(ValueError, match="timestamps has 3 rows"):
        causal_scores(np.zeros(4), timestamps=[0.0, 1.0, 2.0])
