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
