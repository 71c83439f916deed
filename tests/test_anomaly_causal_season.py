"""Causal detector, seasonal signal: the period it uses, and when it uses none."""

from __future__ import annotations

import numpy as np
import pytest

from hawknb.kernels.anomaly_causal import (
    CausalConfig,
    _past_period,
    _seasonal_residual,
    causal_scores,
    refine_period,
    seasonal_gain,
)
from hawknb.kernels.anomaly_core import detect_period

DAY = 288  # 5-minute rows


def _day_curve(n: int) -> np.ndarray:
    """A smooth day: low at night, a steep rise in the morning and fall in the evening."""
    ph = np.arange(n) % DAY
    up = 1 / (1 + np.exp(-(ph - 100) / 3))
    down = 1 / (1 + np.exp((ph - 215) / 3))
    return 20 + 60 * up * down


def test_refine_period_moves_a_biased_acf_peak_to_the_true_day():
    x = _day_curve(1024)
    found = detect_period(x, max_lag=1024 // 3, min_acf=0.6)
    assert found is not None and abs(found - DAY) <= 3  # the ACF peak (biased short)
    assert refine_period(x, found) == DAY
    assert refine_period(x, DAY) == DAY  # the right one stays


def test_a_perfectly_regular_day_leaves_no_seasonal_residual_and_no_alarm():
    """A noise-free repeating day is the easiest series there is: nothing may fire on it."""
    x = _day_curve(4032)
    resid = _seasonal_residual(x, CausalConfig())
    known = np.isfinite(resid)
    assert known[1024:].all()  # the period is in use from the 1024-row checkpoint on
    assert np.abs(resid[known]).max() < 1e-9
    s = causal_scores(x)
    assert s[604:].max() < 0.51  # after NAB's probation: no firing (ties only, ratio ~1)


@pytest.mark.parametrize("seed", range(3))
def test_seasonal_gain_separates_a_daily_curve_from_noise(seed):
    rng = np.random.default_rng(seed)
    noisy_day = _day_curve(4032) + rng.normal(0, 5, 4032)
    noise = rng.normal(0, 1, 4032)
    assert seasonal_gain(noisy_day, DAY) < 0.5
    # |x_t - x_{t-P}| of iid noise has median 0.95 sd, |x - median| 0.67 sd: ratio ~1.4
    assert seasonal_gain(noise, DAY) == pytest.approx(np.sqrt(2), rel=0.1)


def test_a_period_that_does_not_beat_the_median_is_not_used():
    """Few-row 'periods' of a level-driven series: the residual would only add alarms."""
    rng = np.random.default_rng(0)
    n = 4096
    level = np.repeat(rng.normal(0, 1, n // 64), 64)  # plateaus: ACF high at every short lag
    wiggle = np.tile([0.0, 0.3, 0.6, 0.3, 0.0, -0.3], n // 6 + 1)[:n]
    x = level + wiggle + rng.normal(0, 0.5, n)
    cfg = CausalConfig(season_min_acf=0.0)  # let the ACF propose a period at every checkpoint
    refused = 0
    for c in (512, 1024, 2048, 4096):
        p = detect_period(x[:c], max_lag=c // 3, min_acf=0.0)
        assert p is not None
        p = refine_period(x[:c], p)
        if seasonal_gain(x[:c], p) >= 1.0:
            assert _past_period(x[:c], cfg) is None
            refused += 1
        else:
            assert _past_period(x[:c], cfg) == p
    assert refused >= 3


def test_seasonal_gain_bad_and_constant_input():
    with pytest.raises(ValueError, match="period"):
        seasonal_gain(np.zeros(10), 10)
    assert seasonal_gain(np.zeros(10), 3) == 0.0  # constant: a perfect (trivial) forecast


def _day_with_a_night_gap(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """14 noisy days of 5-minute rows with 50 night rows of day 8 missing; (values, ts, gap row).

    The gap starts and ends at night, so the values on both sides match: nothing but the phase
    of the rows after it changes. It comes after the 2048-row checkpoint, so the period in use
    was found on gap-free rows.
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(14 * DAY)
    missing = (steps >= 8 * DAY + 10) & (steps < 8 * DAY + 60)
    x = _day_curve(steps.size) + rng.normal(0, 1, steps.size)
    ts = np.datetime64("2026-01-01T00:00") + steps * np.timedelta64(5, "m")
    return x[~missing], ts[~missing], 8 * DAY + 10


@pytest.mark.parametrize("seed", range(3))
def test_missing_rows_do_not_shift_the_seasonal_phase_with_timestamps(seed):
    """A row lag of one day reaches 50 steps too far back after the gap and meets the morning
    rise with a night value (residual about 60 sd): the seasonal signal fires on a normal day.
    With the timestamps the lag is one day in time, the residual stays noise, nothing fires."""
    x, ts, gap = _day_with_a_night_gap(seed)
    after = slice(gap, gap + 2 * DAY)  # the rows whose row lags cross the gap
    by_row = _seasonal_residual(x, CausalConfig())
    by_time = _seasonal_residual(x, CausalConfig(), ts.astype(np.int64).astype(float))
    assert np.nanmax(np.abs(by_row[after])) > 40
    assert np.nanmax(np.abs(by_time[after])) < 6
    cfg = CausalConfig(level_scales=(), context_bins=0, spatial_tol=-1.0)  # point and season
    assert (causal_scores(x, cfg)[after] >= 0.5).any()  # the morning rise after the gap
    assert not (causal_scores(x, cfg, timestamps=ts)[after] >= 0.5).any()
